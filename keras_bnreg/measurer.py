"""ModelMeasurer: a model's per-node columns on its training inputs, in one pass at most.

`measure_model(model, x)` measures a model once (inspect, notebooks); the callback
(`monitor.RegularizationMonitor`) measures it during training through the same
`ModelMeasurer`. The math is in `measures.py`, the pairs come from `pairs.py`, the inputs are
read by `inputs.py` (whatever `model.fit` takes).
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref

import keras
import numpy as np

from keras_bnreg import measures
from keras_bnreg import pairs as pairs_module
from keras_bnreg.inputs import TrainingInputs
from keras_bnreg.layers import batchnorm_statistics

# Float elements held at once by a streamed pass or a chunk of patches (about 64 MiB of
# float32 outputs, 128 MiB of float64 patches): memory stays bounded whatever the layer.
ELEMENTS_PER_CHUNK = 1 << 24

# Each model's probes (sub-models from its inputs to some of its tensors), kept as long as
# the model lives: a sweep worker trains one model run after run (compiled.py), and a probe
# built once keeps its traced predict function.
_PROBES = weakref.WeakKeyDictionary()


# Each model's last input moments per fixed-input layer, with what they were computed from:
# a sweep's next run on the same inputs through the same fixed path (another seed, the
# same data and input scaling) takes them instead of a pass over every input (74 GFLOP
# on 60,000 MNIST digits). In-memory NumPy inputs only (a pipeline has no fingerprint).
_MOMENTS = weakref.WeakKeyDictionary()

# Compute dtypes of mixed precision: the monitor's passes compute in float32 instead.
_HALF = ("float16", "bfloat16")


def fingerprint(inputs) -> str:
    """A digest of the arrays' dtypes, shapes and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for array in keras.tree.flatten(inputs):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def probe(model, outputs) -> keras.Model:
    """`keras.Model(<the model's inputs>, outputs)`, built once per model and outputs."""
    probes = _PROBES.setdefault(model, {})
    key = tuple(id(tensor) for tensor in keras.tree.flatten(outputs))
    if key not in probes:
        probes[key] = keras.Model(_input_structure(model), outputs)
    return probes[key]


def _input_structure(model):
    """The model's inputs as it takes them: a tensor, a list or a dict (a probe built on
    another structure would warn at every call under PyTorch)."""
    try:
        return model.input  # a functional model's, as built
    except AttributeError:  # a Sequential's single input
        inputs = keras.tree.flatten(model.inputs)
        return inputs[0] if len(inputs) == 1 else inputs


@contextlib.contextmanager
def computing_in_float32(model):
    """Every layer of `model` computes in float32 inside (a mixed-precision policy is swapped
    for float32 and restored on leaving; the variables are float32 under mixed precision).

    Under `mixed_float16` a CPU computes float16 slowly (no native float16 arithmetic in
    TensorFlow's CPU kernels), and float16 outputs hold 3 significant digits: the monitor's
    passes compute in float32 and its sums in float64.
    """
    changed = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        policy = layer.dtype_policy
        if policy.compute_dtype in _HALF and getattr(policy, "quantization_mode", None) is None:
            changed.append((layer, policy))
            layer.dtype_policy = "float32"
    try:
        yield
    finally:
        for layer, policy in changed:
            layer.dtype_policy = policy


def measure_model(
    model, inputs, deep=True, chunk_size=8192, include=None, exclude=None, max_samples=None
) -> dict:
    """Every measurable layer's per-node columns on `inputs`, in inference mode.

    Args:
        model: any Keras 3 model with Dense/Conv -> BatchNormalization pairs (`pairs.py`).
        inputs: the training inputs, as `model.fit` receives them (arrays, a
            `tf.data.Dataset`, a `PyDataset`, a generator, a torch `DataLoader`:
            `inputs.py`); None: only the columns that need no data (alpha and
            alpha_centered NaN).
        deep: also measure the data-based alpha of layers whose inputs change in training
            (one streamed inference pass); without it those columns are NaN.
        chunk_size: at most this many inputs per chunk.
        include, exclude: layers to measure or leave out, by name, path or pattern
            (`pairs.find_pairs`).
        max_samples: measure on at most this many inputs (the first ones the data yields).

    Returns:
        `{layer: {column: per-node array}}`, columns `measures.NODE_COLUMNS` (the effective
        step NaN: it needs an epoch), layers in data-flow order (the first is the primary
        one, `pairs.primary`).
    """
    measurer = ModelMeasurer(model, inputs, chunk_size, include, exclude, max_samples)
    return measurer.measure(deep=deep)


class ModelMeasurer:
    """Measures a model's pairs on fixed inputs; what never changes is computed once.

    - A layer whose inputs never change (between the model's inputs and it only weightless
      layers such as `Rescaling`, `Flatten`, `Reshape`, or layers whose weights training
      never changes, such as `InputScaling`): the second moment of its inputs
      (`R = E[x x^T]`, for a convolution over every input patch) and their mean are
      summed once, in float64 over chunks; then `alpha_j^2 = w_j^T R w_j` and
      `alpha_centered_j^2 = alpha_j^2 - (E[x]^T w_j)^2` cost `O(d^2 n)` per measurement.
    - Other layers: their outputs minus bias, `z = w^T x` (every position of a
      convolution's output), give `E[z^2]` and `E[z]` as float64 sums over chunks.

    Both come from one inference pass over the inputs (at most one per measurement; the
    fixed layers' moments only in the first), computed in float32 whatever the model's
    dtype policy (`computing_in_float32`).

    Args:
        model: the model (`pairs.find_pairs` finds its pairs, warning about the rest).
        inputs: training inputs as `model.fit` takes them (`inputs.TrainingInputs`), or None.
        chunk_size: at most this many inputs per chunk.
        include, exclude: layers to measure or leave out (`pairs.find_pairs`).
        max_samples: read at most this many inputs per pass.
    """

    def __init__(
        self, model, inputs, chunk_size=8192, include=None, exclude=None, max_samples=None
    ):
        self.model = model
        if inputs is not None and not isinstance(inputs, TrainingInputs):
            inputs = TrainingInputs(inputs, max_samples)
        self.inputs = inputs
        self.chunk_size = chunk_size
        shape = None if inputs is None else inputs.batch_shape()
        self.pairs = pairs_module.find_pairs(model, shape, include, exclude)
        measured = [pair for pair in self.pairs if pair.reachable and inputs is not None]
        self.fixed = [pair for pair in measured if pair.fixed_inputs and _patch_path(pair.layer)]
        self.streamed = [pair for pair in measured if pair not in self.fixed]
        self.moments = {}  # fixed layer -> (R, E[x]), once summed
        self._sources = {}
        if inputs is not None and inputs.in_memory and self.fixed:
            self._reuse_moments()

    @property
    def samples(self) -> int | None:
        """Inputs the data-based alphas were measured on (None before the first pass)."""
        return None if self.inputs is None else self.inputs.samples

    def weights(self) -> dict:
        """`{layer: (kernel, bias)}` now, float64 NumPy."""
        return {pair.name: _layer_weights(pair.layer) for pair in self.pairs}

    def measure(self, deep=True, start=None, steps=0, sgd=None) -> dict:
        """`{layer: {column: per-node array}}`; streamed layers' alphas NaN unless `deep`.

        Args:
            deep: also run the streamed pass for the layers whose inputs change.
            start: `{layer: kernel}` at the start of the epoch: the effective step is
                measured from it to now (`measures.effective_step`); None: NaN.
            steps: optimizer steps since `start`.
            sgd: `(learning_rate, momentum)` when the optimizer is SGD, else None.
        """
        weights = self.weights()
        missing = [pair for pair in self.fixed if pair.name not in self.moments]
        streamed = self.streamed if deep else []
        alphas = {}
        if missing or streamed:
            alphas = self._pass(missing, streamed, weights)
        for name, (second, mean) in self.moments.items():
            alphas[name] = measures.alphas_from_input_moments(
                measures.kernel_columns(weights[name][0]), second, mean, checked=True
            )
        tables = {}
        for pair in self.pairs:
            kernel, bias = weights[pair.name]
            nan = np.full(kernel.shape[-1], np.nan)
            alpha, alpha_centered = alphas.get(pair.name, (nan, nan))
            if pair.bn is None:  # no BN: its columns are undefined
                stats, epsilon = dict.fromkeys(("gamma", "beta", "moving_mean"), nan), 1.0
                stats["moving_variance"] = nan
            else:
                stats, epsilon = batchnorm_statistics(pair.bn), pair.bn.epsilon
            step = None
            if start is not None and pair.name in start:
                step = measures.effective_step(start[pair.name], kernel, steps, sgd)
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
                step,
            )
        return tables

    def _pass(self, fixed, streamed, weights) -> dict:
        """One inference pass over the inputs: the input (patch) moments of `fixed` layers
        (kept in `self.moments`) and alpha, alpha_centered of `streamed` layers."""
        model_inputs = keras.tree.flatten(self.model.inputs)
        direct = {
            pair.name: len(model_inputs) == 1 and pair.input is model_inputs[0] for pair in fixed
        }
        outputs = [pair.input for pair in fixed if not direct[pair.name]]
        outputs += [pair.output for pair in streamed]
        per_input = sum(_patch_elements(pair) for pair in fixed)
        per_input += sum(int(np.prod(pair.output.shape[1:])) for pair in streamed)
        rows = max(1, min(self.chunk_size, ELEMENTS_PER_CHUNK // max(1, per_input)))
        example_rank = len(model_inputs[0].shape) - 1
        inputs_moments = {pair.name: measures.RowMoments(np.float32) for pair in fixed}
        projections = {pair.name: measures.ProjectionMoments() for pair in streamed}
        model_probe = probe(self.model, outputs) if outputs else None
        for chunk in self.inputs.chunks(rows, example_rank):
            values = []
            if model_probe is not None:
                # predict_on_batch: inference mode through a compiled graph (20% faster than
                # an eager call here; docs/PERFORMANCE.md)
                with computing_in_float32(model_probe):
                    values = keras.tree.flatten(model_probe.predict_on_batch(chunk))
            values = iter(values)
            for pair in fixed:
                x = keras.tree.flatten(chunk)[0] if direct[pair.name] else next(values)
                x = np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float32)
                inputs_moments[pair.name].add(_input_rows(pair.layer, x))
            for pair in streamed:
                projection = _channels_last_rows(pair.layer, next(values))
                projections[pair.name].add(projection - weights[pair.name][1])
        for pair in fixed:
            # A Gram matrix: positive semi-definite by construction (see RowMoments)
            second, mean, _ = inputs_moments[pair.name].result()
            second.flags.writeable = mean.flags.writeable = False  # shared with later measurers
            self.moments[pair.name] = (second, mean)
            if pair.name in self._sources:
                _MOMENTS.setdefault(self.model, {})[pair.name] = (
                    self._sources[pair.name],
                    (second, mean),
                )
        return {name: total.alphas() for name, total in projections.items()}

    def _reuse_moments(self) -> None:
        """Take this model's last moments of a fixed layer computed from the same NumPy
        inputs, fixed path weights, chunking and cap (a sweep's next run)."""
        data = self.inputs.data
        if not all(isinstance(array, np.ndarray) for array in keras.tree.flatten(data)):
            return
        digest = fingerprint(data)
        model_inputs = keras.tree.flatten(self.model.inputs)
        for pair in self.fixed:
            direct = len(model_inputs) == 1 and pair.input is model_inputs[0]
            path_weights = () if direct else probe(self.model, pair.input).weights
            self._sources[pair.name] = (
                digest,
                tuple(_numpy(weight).tobytes() for weight in path_weights),
                self.chunk_size,
                self.inputs.max_samples,
            )
            last = _MOMENTS.get(self.model, {}).get(pair.name)
            if last is not None and last[0] == self._sources[pair.name]:
                self.moments[pair.name] = last[1]


def _patch_path(layer) -> bool:
    """Whether `layer`'s alpha can come from its input (patch) moments computed once."""
    if not isinstance(layer, pairs_module.CONV_TYPES):
        return True
    return (
        layer.data_format == "channels_last"
        and layer.groups == 1
        and layer.padding in ("valid", "same")
    )


def _patch_elements(pair) -> int:
    """Float elements of one input's rows for a fixed layer (its patches for a conv)."""
    elements = int(np.prod(pair.input.shape[1:]))
    if isinstance(pair.layer, pairs_module.CONV_TYPES):
        elements *= int(np.prod(pair.layer.kernel_size))
    return elements


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
    kernel = _numpy(layer.kernel)
    if layer.use_bias:
        bias = _numpy(layer.bias)
    else:
        bias = np.zeros(kernel.shape[-1])
    return kernel, bias


def _numpy(variable):
    """A variable's value as float64 NumPy (through a tensor: NumPy 2 warns about a
    variable's own `__array__` under TensorFlow)."""
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.copy(variable)), np.float64)
