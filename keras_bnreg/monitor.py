"""RegularizationMonitor: per-node alpha, norms and effective weights during training.

`measure_model(model, x)` measures a model once (inspect, notebooks); the callback measures
it during training through the same `ModelMeasurer`. The math is in `measures.py`, the
pairs come from `pairs.py`.
"""

from __future__ import annotations

import hashlib
import time
import weakref

import keras
import numpy as np

from keras_bnreg import measures
from keras_bnreg import pairs as pairs_module
from keras_bnreg.layers import batchnorm_statistics

# Float elements held at once by a streamed pass or a chunk of patches (about 64 MiB of
# float32 outputs, 128 MiB of float64 patches): memory stays bounded whatever the layer.
ELEMENTS_PER_CHUNK = 1 << 24

# Each model's probes (sub-models from its inputs to some of its layers), kept as long as
# the model lives: a sweep worker trains one model run after run (compiled.py), and a probe
# built once keeps its traced predict function.
_PROBES = weakref.WeakKeyDictionary()


# Each model's last input moments per fixed-input layer, with what they were computed from:
# a sweep's next run on the same inputs through the same fixed path (another seed, the
# same data and input scaling) takes them instead of a pass over every input (74 GFLOP
# on 60,000 MNIST digits).
_MOMENTS = weakref.WeakKeyDictionary()


def fingerprint(inputs) -> str:
    """A digest of the arrays' dtypes, shapes and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for array in keras.tree.flatten(inputs):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def probe(model, outputs) -> keras.Model:
    """`keras.Model(model.inputs, outputs)`, built once per model and outputs."""
    probes = _PROBES.setdefault(model, {})
    key = tuple(id(tensor) for tensor in keras.tree.flatten(outputs))
    if key not in probes:
        probes[key] = keras.Model(model.inputs, outputs)
    return probes[key]


def measure_model(model, inputs, deep=True, chunk_size=8192) -> dict:
    """Every measurable layer's per-node columns on `inputs`, in inference mode.

    Args:
        model: any Keras 3 model with Dense/Conv -> BatchNormalization pairs (`pairs.py`).
        inputs: the training inputs, as `model.fit` receives them; None: only the
            columns that need no data (alpha and alpha_centered NaN).
        deep: also measure the data-based alpha of layers whose inputs change in training
            (one streamed inference pass); without it those columns are NaN.
        chunk_size: at most this many inputs per chunk.

    Returns:
        `{layer name: {column: per-node array}}`, columns `measures.NODE_COLUMNS`, layers
        in data-flow order (the first is the primary one, `pairs.primary`).
    """
    return ModelMeasurer(model, inputs, chunk_size).measure(deep=deep)


class ModelMeasurer:
    """Measures a model's pairs on fixed inputs; what never changes is computed once.

    - A layer whose inputs never change (between the model's inputs and it only weightless
      layers such as `Rescaling`, `Flatten`, `Reshape`, or layers whose weights training
      never changes, such as `InputScaling`): the second moment of its inputs
      (`R = E[x x^T]`, for a convolution over every input patch) and their mean are
      computed once, streamed in chunks; then `alpha_j^2 = w_j^T R w_j` and
      `alpha_centered_j^2 = alpha_j^2 - (E[x]^T w_j)^2` cost `O(d^2 n)` per measurement.
    - Other layers: one streamed inference pass of their outputs minus bias,
      `z = w^T x` (every position of a convolution's output), gives `E[z^2]` and `E[z]`.

    Args:
        model: the model (`pairs.find_pairs` finds its pairs, warning about the rest).
        inputs: training inputs as the model receives them (array, or list/dict of arrays).
        chunk_size: at most this many inputs per chunk.
    """

    def __init__(self, model, inputs, chunk_size=8192):
        self.model = model
        self.inputs = inputs
        self.chunk_size = chunk_size
        self.count = 0 if inputs is None else len(keras.tree.flatten(inputs)[0])
        self.pairs = pairs_module.find_pairs(model, inputs)
        self.moments = {}
        self.streamed = []
        for pair in self.pairs:
            if not pair.reachable or inputs is None:
                continue
            if pair.fixed_inputs and _patch_path(pair.layer):
                self.moments[pair.name] = self._input_moments(pair.layer)
            else:
                self.streamed.append(pair)
        self._probe = None
        if self.streamed:
            self._probe = probe(model, [pair.layer.output for pair in self.streamed])

    def measure(self, deep=True) -> dict:
        """`{layer: {column: per-node array}}`; streamed layers' alphas NaN unless `deep`."""
        weights = {pair.name: _layer_weights(pair.layer) for pair in self.pairs}
        alphas = {
            name: measures.alphas_from_input_moments(
                measures.kernel_columns(weights[name][0]), second, mean, checked=True
            )
            for name, (second, mean) in self.moments.items()
        }
        if deep and self._probe is not None:
            alphas.update(self._streamed_alphas(weights))
        tables = {}
        for pair in self.pairs:
            kernel, bias = weights[pair.name]
            nodes = kernel.shape[-1]
            nan = np.full(nodes, np.nan)
            alpha, alpha_centered = alphas.get(pair.name, (nan, nan))
            if pair.bn is None:  # no BN: its columns are undefined
                stats, epsilon = dict.fromkeys(("gamma", "beta", "moving_mean"), nan), 1.0
                stats["moving_variance"] = nan
            else:
                stats, epsilon = batchnorm_statistics(pair.bn), pair.bn.epsilon
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

    def _chunks(self, elements_per_input):
        """Slices of the inputs, each small enough for `ELEMENTS_PER_CHUNK`."""
        rows = max(1, min(self.chunk_size, ELEMENTS_PER_CHUNK // max(1, elements_per_input)))
        for start in range(0, self.count, rows):
            window = slice(start, start + rows)
            yield keras.tree.map_structure(lambda array, window=window: array[window], self.inputs)

    def _input_moments(self, layer):
        """`(R, E[x])` of what enters `layer` (its patches for a convolution), computed once
        (and reused from this model's last measurer when computed from the same inputs)."""
        model_inputs = keras.tree.flatten(self.model.inputs)
        direct = len(model_inputs) == 1 and layer.input is model_inputs[0]
        inputs_probe = None if direct else probe(self.model, layer.input)
        per_input = int(np.prod(layer.input.shape[1:]))
        if isinstance(layer, pairs_module.CONV_TYPES):
            per_input *= int(np.prod(layer.kernel_size))

        # what the moments follow from: the inputs, the fixed path's weights, the chunking
        path_weights = () if direct else inputs_probe.weights
        source = (
            fingerprint(self.inputs),
            tuple(np.asarray(weight).tobytes() for weight in path_weights),
            self.chunk_size,
        )
        last = _MOMENTS.setdefault(self.model, {}).get(layer.name)
        if last is not None and last[0] == source:
            return last[1]

        def rows():
            for chunk in self._chunks(per_input):
                values = chunk if direct else inputs_probe.predict_on_batch(chunk)
                values = np.asarray(keras.tree.flatten(values)[0], dtype=np.float32)
                yield _input_rows(layer, values)

        # A Gram matrix: positive semi-definite by construction (see row_moments)
        second, mean, _ = measures.row_moments(rows(), product_dtype=np.float32)
        second.flags.writeable = mean.flags.writeable = False  # shared with later measurers
        _MOMENTS[self.model][layer.name] = (source, (second, mean))
        return second, mean

    def _streamed_alphas(self, weights):
        """One streamed inference pass: alpha and centred alpha of every streamed layer."""
        totals = [[0, 0.0, 0.0] for _ in self.streamed]
        per_input = sum(int(np.prod(pair.layer.output.shape[1:])) for pair in self.streamed)
        for chunk in self._chunks(per_input):
            # predict_on_batch: inference mode through a compiled graph (20% faster than an
            # eager call here; docs/PERFORMANCE.md)
            outputs = self._probe.predict_on_batch(chunk)
            if len(self.streamed) == 1:
                outputs = [outputs]
            for total, pair, output in zip(totals, self.streamed, outputs):
                projection = _channels_last_rows(pair.layer, output) - weights[pair.name][1]
                total[0] += projection.shape[0]
                total[1] = total[1] + projection.sum(axis=0)
                total[2] = total[2] + np.einsum("ij,ij->j", projection, projection)
        return {
            pair.name: measures.alphas_from_moments(*total)
            for pair, total in zip(self.streamed, totals)
        }


class RegularizationMonitor(keras.callbacks.Callback):
    """Measures alpha per node (or channel) of every Dense/Conv -> BN pair, during training.

    `model.fit(x, y, callbacks=[RegularizationMonitor(x)])` on any Keras 3 model: the pairs
    come from the layer graph (`pairs.find_pairs`, which warns once about every layer it
    cannot measure and raises `ValueError` when none is left), the measurement is
    `ModelMeasurer`'s (see there). For each pair it reports every column of
    `measures.NODE_COLUMNS`: alpha `sqrt(E[(w^T x)^2])` over the inputs that really enter
    the layer (every patch at every position for a convolution), its centred form, BN's
    moving-stats estimate, raw and BN-folded norms, gamma, beta, BN's moving statistics.

    Layers with fixed inputs (the first layer) cost `O(d^2 n)` per measurement. The others
    need a streamed inference pass (about half an epoch's FLOPs for the paper's MLP), so it
    runs every `deep_every` measurements and at the last epoch; their norms, effective
    weights and moving-stat alpha are cheap and measured every time.

    Scalar summaries (mean over nodes, and alpha's std) go into `logs`: unprefixed for the
    primary layer (`pairs.primary`), `<layer>_...` for the others, so the progress bar,
    `History`, `CSVLogger` and TensorBoard see them. Per-node arrays are kept in `latest`
    (`{layer: {column: array}}`) and, per measured epoch, in `records`.

    Args:
        train_inputs: the training inputs, as `model.fit` receives them.
        every: measure every N epochs (the last epoch is always measured).
        chunk_size: at most this many inputs per chunk of the streamed passes.
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
        self.measurer = ModelMeasurer(self.model, self.train_inputs, self.chunk_size)
        self.pairs = self.measurer.pairs
        self.records = []
        self.latest = {}
        self._writer = None
        if self.tensorboard_dir:
            import tensorflow as tf  # tf.summary: only with TensorBoard

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
        """`{layer: {column: per-node array}}`; streamed layers' alphas NaN unless `deep`."""
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

    def _write_histograms(self, epoch):
        import tensorflow as tf  # tf.summary: only with TensorBoard

        with self._writer.as_default():
            for name, table in self.latest.items():
                for column, values in table.items():
                    if np.all(np.isfinite(values)):
                        tf.summary.histogram(f"{name}/{column}", values, step=epoch)
        self._writer.flush()


def _patch_path(layer) -> bool:
    """Whether `layer`'s alpha can come from its input (patch) moments computed once."""
    if not isinstance(layer, pairs_module.CONV_TYPES):
        return True
    return (
        layer.data_format == "channels_last"
        and layer.groups == 1
        and layer.padding in ("valid", "same")
    )


def _input_rows(layer, values):
    """What `layer` multiplies by its kernel columns, one row per output node position."""
    if isinstance(layer, keras.layers.Conv1D):
        return measures.conv_patches(
            values[:, None],
            (1, *layer.kernel_size),
            (1, *layer.strides),
            layer.padding,
            (1, *layer.dilation_rate),
        )
    if isinstance(layer, keras.layers.Conv2D):
        return measures.conv_patches(
            values, layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate
        )
    return values.reshape(-1, values.shape[-1])


def _channels_last_rows(layer, output):
    """A layer's output as (positions, channels) float64 rows."""
    output = np.asarray(keras.ops.convert_to_numpy(output), dtype=np.float64)
    if getattr(layer, "data_format", None) == "channels_first":
        output = np.moveaxis(output, 1, -1)
    return output.reshape(-1, output.shape[-1])


def _layer_weights(layer):
    """`(kernel, bias)` as float64 NumPy; a zero bias for a layer without one."""
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
    if layer.use_bias:
        bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float64)
    else:
        bias = np.zeros(kernel.shape[-1])
    return kernel, bias
