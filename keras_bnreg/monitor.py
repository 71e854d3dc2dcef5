"""RegularizationMonitor: per-node alpha, norms and effective weights during training."""

from __future__ import annotations

import time

import keras
import numpy as np

from keras_bnreg import measures
from keras_bnreg.models import dense_bn_pairs


class RegularizationMonitor(keras.callbacks.Callback):
    """Measures, for every Dense+BN pair and every node, what the paper calls alpha.

    For each Dense layer it takes the projections `z = w^T x` of the inputs that really
    enter it (the scaled images for the first layer, the previous ReLU outputs deeper) over
    the full training inputs, and computes every column of `measures.NODE_COLUMNS`.

    - First layer: its inputs never change, so `R = X^T X / N` and the mean input are
      computed once (streamed in chunks); each measurement is then exact and costs
      `O(d^2 n)`: `alpha_j^2 = w_j^T R w_j`, `alpha_centered_j^2 = alpha_j^2 - (mean^T w_j)^2`.
    - Deeper layers: their inputs change with every step, so their data-based alpha needs
      one streamed inference pass (chunks of `chunk_size` rows; memory bounded by chunk x
      width). That pass costs about half an epoch's FLOPs, so it runs every `deep_every`
      measurements and at the last epoch; their norms, effective weights and moving-stat
      alpha are cheap and measured every time.

    Scalar summaries (mean over nodes, and alpha's std) go into `logs`: unprefixed for
    the first hidden layer, `<layer>_...` for the others, so the progress bar, `History`,
    `CSVLogger` and TensorBoard see them. Per-node arrays are kept in `latest`
    (`{layer: {column: array}}`) and, per measured epoch, in `records`.

    Args:
        train_inputs: the training inputs, shape (N, d), as the model takes them (raw
            pixels for a model with an input Rescaling layer: the first Dense layer's
            inputs are then computed through it).
        every: measure every N epochs (the last epoch is always measured).
        chunk_size: rows per chunk of the streamed passes.
        deep_every: measure deeper layers' data-based alpha every N epochs (and the last).
        tensorboard_dir: if set, per-node histograms are written there.
    """

    def __init__(self, train_inputs, every=1, chunk_size=8192, deep_every=1, tensorboard_dir=None):
        super().__init__()
        if every < 1 or chunk_size < 1 or deep_every < 1:
            raise ValueError(
                "every, chunk_size and deep_every must be >= 1. Received: "
                f"every={every}, chunk_size={chunk_size}, deep_every={deep_every}"
            )
        self.train_inputs = train_inputs
        self.every = every
        self.chunk_size = chunk_size
        self.deep_every = deep_every
        self.tensorboard_dir = tensorboard_dir

    def on_train_begin(self, logs=None):
        self.pairs = dense_bn_pairs(self.model)
        first_inputs = self.train_inputs
        first_input = self.pairs[0].dense.input
        if first_input is not self.model.inputs[0]:
            # Weightless preprocessing (the input Rescaling) before the first Dense layer:
            # measure what really enters it.
            first_inputs = keras.Model(self.model.inputs[0], first_input).predict(
                self.train_inputs, batch_size=self.chunk_size, verbose=0
            )
        self.second_moment, self.mean_input = measures.input_moments(first_inputs, self.chunk_size)
        # Dense outputs (pre-BN) of the deeper pairs, in inference mode.
        self._probe = None
        if len(self.pairs) > 1:
            self._probe = keras.Model(
                self.model.inputs[0], [pair.dense.output for pair in self.pairs[1:]]
            )
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
        deep = last or (epoch + 1) % self.deep_every == 0
        self.latest = self.measure(deep=deep)
        self.records.append({"epoch": epoch + 1, "layers": self.latest})
        logs.update(self.summaries(self.latest))
        logs["monitor_seconds"] = time.perf_counter() - start
        if self._writer is not None:
            self._write_histograms(epoch)

    def measure(self, deep=True) -> dict:
        """Returns `{layer: {column: per-node array}}`; deeper alphas are NaN unless `deep`."""
        weights = [_dense_weights(pair.dense) for pair in self.pairs]
        alphas = [
            measures.alphas_from_input_moments(weights[0][0], self.second_moment, self.mean_input)
        ]
        if deep and self._probe is not None:
            alphas += self._deep_alphas(weights[1:])
        else:
            alphas += [(np.full(k.shape[1], np.nan),) * 2 for k, _ in weights[1:]]
        tables = {}
        for pair, (kernel, bias), (alpha, alpha_centered) in zip(self.pairs, weights, alphas):
            if pair.bn is None:  # no BN: its columns are undefined
                nan = np.full(kernel.shape[1], np.nan)
                stats, epsilon = dict.fromkeys(("gamma", "beta", "moving_mean"), nan), 1.0
                stats["moving_variance"] = nan
            else:
                stats, epsilon = pair.bn.statistics(), pair.bn.epsilon
            tables[pair.name] = measures.node_table(
                kernel,
                bias,
                stats["gamma"],
                stats["beta"],
                stats["moving_mean"],
                stats["moving_variance"],
                epsilon,
                alpha,
                alpha_centered,
            )
        return tables

    def _deep_alphas(self, weights):
        """One streamed inference pass: alpha and centred alpha of every deeper layer."""
        totals = [[0, 0.0, 0.0] for _ in weights]
        for start in range(0, len(self.train_inputs), self.chunk_size):
            # predict_on_batch: inference mode through a compiled graph (20% faster than an
            # eager call here; docs/PERFORMANCE.md)
            outputs = self._probe.predict_on_batch(
                self.train_inputs[start : start + self.chunk_size]
            )
            if len(weights) == 1:
                outputs = [outputs]
            for total, (_, bias), output in zip(totals, weights, outputs):
                projection = keras.ops.convert_to_numpy(output).astype(np.float64) - bias
                total[0] += projection.shape[0]
                total[1] = total[1] + projection.sum(axis=0)
                total[2] = total[2] + np.einsum("ij,ij->j", projection, projection)
        return [measures.alphas_from_moments(*total) for total in totals]

    def summaries(self, tables) -> dict:
        """Scalar log entries: first layer unprefixed, others `<layer>_...`; NaN left out."""
        out = {}
        for index, (name, table) in enumerate(tables.items()):
            summary = measures.summarize(table, prefix="" if index == 0 else f"{name}_")
            out.update({k: v for k, v in summary.items() if np.isfinite(v)})
        return out

    def _write_histograms(self, epoch):
        import tensorflow as tf

        with self._writer.as_default():
            for name, table in self.latest.items():
                for column, values in table.items():
                    if np.all(np.isfinite(values)):
                        tf.summary.histogram(f"{name}/{column}", values, step=epoch)
        self._writer.flush()


def _dense_weights(dense):
    kernel = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)
    if dense.use_bias:
        bias = keras.ops.convert_to_numpy(dense.bias).astype(np.float64)
    else:
        bias = np.zeros(kernel.shape[1])
    return kernel, bias
