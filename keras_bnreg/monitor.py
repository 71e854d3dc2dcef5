"""RegularizationMonitor: per-node alpha, norms and effective weights during training."""

from __future__ import annotations

import time

import keras
import numpy as np

from keras_bnreg import measures
from keras_bnreg.models import dense_bn_pairs


class RegularizationMonitor(keras.callbacks.Callback):
    """Measures, for every Dense+BN pair and every node, what the paper calls alpha.

    At the end of every `every`-th epoch (and of the last one) it streams the full
    training inputs through the model once, in inference mode and in chunks of
    `chunk_size` rows (memory bounded by chunk x width), and takes for each Dense layer
    the projections `z = w^T x` of the inputs that really enter it (the scaled images
    for the first layer, the previous ReLU outputs deeper). From them and the layer's
    weights it computes every column of `measures.NODE_COLUMNS`.

    Scalar summaries (mean over nodes, and alpha's std) go into `logs`: unprefixed for
    the first hidden layer, `<layer>_...` for the others, so the progress bar, `History`,
    `CSVLogger` and TensorBoard see them. Per-node arrays are kept in `latest`
    (`{layer: {column: array}}`) and, per measured epoch, in `records`.

    Args:
        train_inputs: the training inputs, shape (N, d), as the model sees them.
        every: measure every N epochs (the last epoch is always measured).
        chunk_size: rows per chunk of the measuring forward pass.
        tensorboard_dir: if set, per-node histograms are written there.
    """

    def __init__(self, train_inputs, every=1, chunk_size=8192, tensorboard_dir=None):
        super().__init__()
        if every < 1 or chunk_size < 1:
            raise ValueError(
                f"every and chunk_size must be >= 1. Received: every={every}, "
                f"chunk_size={chunk_size}"
            )
        self.train_inputs = train_inputs
        self.every = every
        self.chunk_size = chunk_size
        self.tensorboard_dir = tensorboard_dir

    def on_train_begin(self, logs=None):
        self.pairs = dense_bn_pairs(self.model)
        # Dense outputs (pre-BN) of every pair, in inference mode.
        self._probe = keras.Model(self.model.inputs[0], [pair.dense.output for pair in self.pairs])
        self.records = []
        self.latest = {}
        self._writer = None
        if self.tensorboard_dir:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.tensorboard_dir))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        last = epoch + 1 >= self.params.get("epochs", epoch + 1)
        if not ((epoch + 1) % self.every == 0 or last):
            return
        if not np.isfinite(logs.get("loss", 0.0)):
            return
        start = time.perf_counter()
        self.latest = self.measure()
        self.records.append({"epoch": epoch + 1, "layers": self.latest})
        logs.update(self.summaries(self.latest))
        logs["monitor_seconds"] = time.perf_counter() - start
        if self._writer is not None:
            self._write_histograms(epoch)

    def measure(self) -> dict:
        """One streamed inference pass; returns `{layer: {column: per-node array}}`."""
        weights = [(pair, *_dense_weights(pair.dense)) for pair in self.pairs]
        totals = [[0, 0.0, 0.0] for _ in self.pairs]
        for start in range(0, len(self.train_inputs), self.chunk_size):
            chunk = self.train_inputs[start : start + self.chunk_size]
            outputs = self._probe(chunk, training=False)
            if len(self.pairs) == 1:
                outputs = [outputs]
            for total, (_, _, bias), output in zip(totals, weights, outputs):
                projection = keras.ops.convert_to_numpy(output).astype(np.float64) - bias
                total[0] += projection.shape[0]
                total[1] = total[1] + projection.sum(axis=0)
                total[2] = total[2] + np.einsum("ij,ij->j", projection, projection)
        tables = {}
        for (pair, kernel, bias), (count, sum_z, sum_z2) in zip(weights, totals):
            alpha, alpha_centered = measures.alphas_from_moments(count, sum_z, sum_z2)
            stats = pair.bn.statistics()
            tables[pair.name] = measures.node_table(
                kernel,
                bias,
                stats["gamma"],
                stats["beta"],
                stats["moving_mean"],
                stats["moving_variance"],
                pair.bn.epsilon,
                alpha,
                alpha_centered,
            )
        return tables

    def summaries(self, tables) -> dict:
        """Scalar log entries: first layer unprefixed, others `<layer>_...`."""
        out = {}
        for index, (name, table) in enumerate(tables.items()):
            out.update(measures.summarize(table, prefix="" if index == 0 else f"{name}_"))
        return out

    def _write_histograms(self, epoch):
        import tensorflow as tf

        with self._writer.as_default():
            for name, table in self.latest.items():
                for column, values in table.items():
                    tf.summary.histogram(f"{name}/{column}", values, step=epoch)
        self._writer.flush()


def _dense_weights(dense):
    kernel = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)
    if dense.use_bias:
        bias = keras.ops.convert_to_numpy(dense.bias).astype(np.float64)
    else:
        bias = np.zeros(kernel.shape[1])
    return kernel, bias
