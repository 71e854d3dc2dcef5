"""RegularizationMonitor: per-node alpha, norms, effective weights and the effective step
during training.

The callback reads state through `self.model` at epoch boundaries (as Keras's own callbacks
do) and measures through `measurer.ModelMeasurer`; `measure_model` measures a model once.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from keras_bnreg import measures
from keras_bnreg import pairs as pairs_module
from keras_bnreg.inputs import TrainingInputs
from keras_bnreg.measurer import ModelMeasurer, measure_model

__all__ = ["ModelMeasurer", "RegularizationMonitor", "measure_model"]


class RegularizationMonitor(keras.callbacks.Callback):
    """Measures alpha and the effective step per node (or channel) of every Dense/Conv -> BN
    pair, during training.

    `model.fit(x, y, callbacks=[RegularizationMonitor(x)])` on any Keras 3 model, any
    backend: the pairs come from the layer graph (`pairs.find_pairs`, which warns once about
    every layer it cannot measure and raises `ValueError` when none is left), the
    measurement is `ModelMeasurer`'s (see there). For each pair it reports every column of
    `measures.NODE_COLUMNS`: alpha `sqrt(E[(w^T x)^2])` over the inputs that really enter
    the layer (every patch at every position for a convolution), its centred form, BN's
    moving-stats estimate, raw and BN-folded norms, gamma, beta, BN's moving statistics,
    and the epoch's angular update and effective learning rate (`measures.effective_step`,
    from the weights at the epoch's start and end: no extra pass).

    Layers with fixed inputs (the first layer) cost `O(d^2 n)` per measurement after one
    pass. The others need a streamed inference pass (about half an epoch's FLOPs for the
    paper's MLP), so it runs every `deep_every` measurements and at the last epoch; their
    norms, effective weights, effective step and moving-stat alpha are cheap and measured
    every time. State is read through `self.model` after Keras has synced it (JAX), in
    float32 whatever the dtype policy.

    Scalar summaries (mean over nodes, and alpha's std) go into `logs`: unprefixed for the
    primary layer (`pairs.primary`), `<layer>_...` for the others, so the progress bar,
    `History`, `CSVLogger` and TensorBoard see them; with `max_samples`, also
    `monitor_samples` (inputs read). Per-node arrays are kept in `latest`
    (`{layer: {column: array}}`) and, per measured epoch, in `records`.

    Args:
        train_inputs: the training inputs, as `model.fit` takes them: arrays, a
            `tf.data.Dataset`, a `keras.utils.PyDataset`, a Python generator (or a function
            returning one), a torch `DataLoader` (`inputs.py`). A pipeline with augmentation
            gives alpha of the augmented inputs.
        every: measure every N epochs (the last epoch is always measured).
        chunk_size: at most this many inputs per chunk of the streamed passes.
        deep_every: measure deeper layers' data-based alpha every N epochs (and the last).
        tensorboard_dir: if set, per-node histograms are written there (needs TensorFlow).
        include, exclude: layers to measure or leave out, by name, path (`block/dense` in a
            sub-model) or shell-style pattern (`conv*`).
        max_samples: read at most this many inputs per pass (large or infinite data).
    """

    def __init__(
        self,
        train_inputs,
        every=1,
        chunk_size=8192,
        deep_every=1,
        tensorboard_dir=None,
        include=None,
        exclude=None,
        max_samples=None,
    ):
        super().__init__()
        if every < 1 or chunk_size < 1 or deep_every < 1:
            raise ValueError(
                "every, chunk_size and deep_every must be >= 1. Received: "
                f"every={every}, chunk_size={chunk_size}, deep_every={deep_every}"
            )
        self.train_inputs = TrainingInputs(train_inputs, max_samples)  # checked here
        self.include = pairs_module.patterns(include, "include")
        self.exclude = pairs_module.patterns(exclude, "exclude")
        self.every = every
        self.chunk_size = chunk_size
        self.deep_every = deep_every
        self.tensorboard_dir = tensorboard_dir

    def on_train_begin(self, logs=None):
        self.measurer = ModelMeasurer(
            self.model, self.train_inputs, self.chunk_size, self.include, self.exclude
        )
        self.pairs = self.measurer.pairs
        self.records = []
        self.latest = {}
        self._start = None
        self._writer = None
        if self.tensorboard_dir:
            import tensorflow as tf  # tf.summary: only with TensorBoard

            self._writer = tf.summary.create_file_writer(str(self.tensorboard_dir))

    def on_epoch_begin(self, epoch, logs=None):
        if self._measured(epoch):
            kernels = {name: kernel for name, (kernel, _) in self.measurer.weights().items()}
            self._start = (kernels, _iterations(self.model.optimizer))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if not self._measured(epoch) or not np.isfinite(logs.get("loss", 0.0)):
            return
        start = time.perf_counter()
        deep = self._last(epoch) or (epoch + 1) % self.deep_every == 0
        kernels, iterations = self._start or (None, None)
        self.latest = self.measurer.measure(
            deep=deep,
            start=kernels,
            steps=_iterations(self.model.optimizer) - iterations if kernels else 0,
            sgd=_sgd_rule(self.model.optimizer),
        )
        self.records.append({"epoch": epoch + 1, "layers": self.latest})
        logs.update(self.summaries(self.latest))
        if self.train_inputs.max_samples is not None and self.measurer.samples is not None:
            logs["monitor_samples"] = self.measurer.samples
        logs["monitor_seconds"] = time.perf_counter() - start
        if self._writer is not None:
            self._write_histograms(epoch)

    def measure(self, deep=True) -> dict:
        """`{layer: {column: per-node array}}` now (the effective step NaN); streamed layers'
        alphas NaN unless `deep`."""
        return self.measurer.measure(deep=deep)

    def trace(self, layer, column):
        """One column of one layer over the measured epochs.

        Returns:
            `(epochs, values)`: the measured epoch numbers, shape (E,), and the per-node
            values at each, shape (E, nodes).
        """
        epochs = np.array([record["epoch"] for record in self.records])
        values = np.array([record["layers"][layer][column] for record in self.records])
        return epochs, values

    def summaries(self, tables) -> dict:
        """Scalar log entries: primary layer unprefixed, others `<layer>_...`; NaN left out."""
        names = list(tables)
        out = {}
        for name, table in tables.items():
            summary = measures.summarize(table, prefix=pairs_module.column_prefix(name, names))
            out.update({k: v for k, v in summary.items() if np.isfinite(v)})
        return out

    def _last(self, epoch) -> bool:
        return epoch + 1 >= self.params.get("epochs", epoch + 1)

    def _measured(self, epoch) -> bool:
        return (epoch + 1) % self.every == 0 or self._last(epoch)

    def _write_histograms(self, epoch):
        import tensorflow as tf  # tf.summary: only with TensorBoard

        with self._writer.as_default():
            for name, table in self.latest.items():
                for column, values in table.items():
                    if np.all(np.isfinite(values)):
                        tf.summary.histogram(f"{name}/{column}", values, step=epoch)
        self._writer.flush()


def _iterations(optimizer) -> int:
    """Steps the optimizer has applied (0 without one)."""
    if optimizer is None:
        return 0
    return int(keras.ops.convert_to_numpy(keras.ops.copy(optimizer.iterations)))


def _sgd_rule(optimizer):
    """`(learning_rate, momentum)` of an SGD optimizer (inside a `LossScaleOptimizer` too),
    else None: the effective learning rate then is the measured angular update per step."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not isinstance(inner, keras.optimizers.SGD):
        return None
    learning_rate = float(keras.ops.convert_to_numpy(keras.ops.copy(inner.learning_rate)))
    return learning_rate, float(inner.momentum)
