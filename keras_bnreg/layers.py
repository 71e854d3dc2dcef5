"""The package's two Keras layers: a BatchNormalization that exposes what the paper reasons
about, and the input scaling every model of this project starts with."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_bnreg import __version__
from keras_bnreg.measures import fold_batchnorm

WRITER = f"keras-bnreg {__version__}"  # what a saved model's InputScaling config records


def batchnorm_statistics(layer) -> dict:
    """NumPy copies of a BatchNormalization's gamma, beta and moving statistics.

    Works for Keras's own layer and any subclass; `scale=False` gives gamma 1,
    `center=False` beta 0 (what the layer then computes).
    """
    nodes = layer.moving_mean.shape[0]
    return {
        "gamma": _numpy(layer.gamma) if layer.scale else np.ones(nodes),
        "beta": _numpy(layer.beta) if layer.center else np.zeros(nodes),
        "moving_mean": _numpy(layer.moving_mean),
        "moving_variance": _numpy(layer.moving_variance),
    }


@keras.saving.register_keras_serializable(package="keras_bnreg")
class InputScaling(keras.layers.Layer):
    """`inputs * scale`, with `scale` held in a non-trainable weight.

    What `keras.layers.Rescaling(scale)` computes (the same product in the layer's float
    type), except that the scale is a variable rather than a constant of the traced graph: a
    sweep worker can reset it, like every other weight, and train a model of another
    amplitude with the functions it has already compiled (`keras_bnreg/compiled.py`).
    Training never changes it (`constant_in_training`), so the monitor still treats what
    follows it as fixed inputs (`pairs.find_pairs`).

    Its config also records which version of this package wrote it (`written_by`): a
    model saved by `train.py` names the code that trained it.

    Args:
        scale: the factor, `amplitude / 255` in this project (raw pixels in).
        written_by: set from a saved config: `"keras-bnreg <version>"` of the package that
            saved it; None (a layer built now) means this package's own version.
        **kwargs: as for `keras.layers.Layer` (`name`, `dtype`).
    """

    constant_in_training = True  # read by pairs: the inputs after it never change

    def __init__(self, scale, written_by=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.written_by = written_by or WRITER

    def build(self, input_shape):
        self.factor = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(np.float64(self.scale)),  # not via float32
            trainable=False,
            name="factor",
        )

    def call(self, inputs):
        return ops.cast(inputs, self.compute_dtype) * ops.cast(self.factor, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        # A file records the package that writes it, also when it re-saves a loaded model.
        return {**super().get_config(), "scale": self.scale, "written_by": WRITER}


@keras.saving.register_keras_serializable(package="keras_bnreg")
class InspectableBatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization that also folds itself into the layer before it.

    Behaves exactly like `keras.layers.BatchNormalization` (same arguments, outputs and
    moving-statistics update); the monitor measures stock BN just as well. In addition
    `fold` gives the effective weight of the Dense layer before it,
    `w_bn = gamma * w / sqrt(moving_variance + epsilon)`: the paper's BN weight of
    Eq. 11-12 with the moving statistics in place of the batch ones.

    Its epsilon is also held in a non-trainable scalar weight, `epsilon_weight`, which
    `call` adds to the variance in place of a constant of the traced graph: a sweep worker
    resets it like any other weight and trains a model of another epsilon with the
    functions it has already compiled (`keras_bnreg/compiled.py`). `self.epsilon` (the
    config, `fold`, the monitor) stays the Python float. Saved files hold Keras's own four
    variables, as a stock layer's do; the weight is set from the config when loaded.

    Models saved by earlier versions of this package kept the latest training batch's
    mean and variance in two more variables; they load, and those two values are dropped.

    Args:
        **kwargs: as for `keras.layers.BatchNormalization`.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if not self.renorm:  # renorm reads epsilon elsewhere too: it keeps the constant
            self.epsilon_weight = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(np.float64(self.epsilon)),
                trainable=False,
                name="epsilon",
            )

    def call(self, inputs, training=None, mask=None):
        if self.renorm:
            return super().call(inputs, training=training, mask=mask)
        # Keras's call reads `self.epsilon` once, in `ops.batch_normalization`: it reads the
        # weight there (object.__setattr__: not tracked, restored right after).
        constant = self.epsilon
        dtype = keras.backend.result_type(inputs.dtype, "float32")  # as Keras's call computes
        object.__setattr__(self, "epsilon", ops.cast(self.epsilon_weight, dtype))
        try:
            return super().call(inputs, training=training, mask=mask)
        finally:
            object.__setattr__(self, "epsilon", constant)

    def _stock_variables(self):
        return [v for v in self.variables if v is not getattr(self, "epsilon_weight", None)]

    def save_own_variables(self, store):
        for index, variable in enumerate(self._stock_variables()):
            store[str(index)] = variable

    def load_own_variables(self, store):
        stock = self._stock_variables()
        count = len(store.keys())
        if count != len(stock):
            raise ValueError(
                f"layer {self.name!r} expects {len(stock)} variables in the file, found {count}"
            )
        for index, variable in enumerate(stock):
            variable.assign(store[str(index)])
        if hasattr(self, "epsilon_weight"):
            self.epsilon_weight.assign(self.epsilon)

    def statistics(self) -> dict:
        """NumPy copies of gamma, beta and the moving statistics (`batchnorm_statistics`)."""
        return batchnorm_statistics(self)

    def fold(self, kernel, bias=None):
        """Effective weight and bias of `Dense(kernel, bias)` followed by this layer.

        In inference mode `self(x @ kernel + bias) == x @ w_bn + b_bn`.

        Args:
            kernel: the Dense kernel, shape (d, n), NumPy or a variable.
            bias: the Dense bias, shape (n,), or None.

        Returns:
            `(w_bn, b_bn)`, float64 NumPy arrays.
        """
        stats = self.statistics()
        return fold_batchnorm(
            _numpy(kernel),
            None if bias is None else _numpy(bias),
            stats["gamma"],
            stats["beta"],
            stats["moving_mean"],
            stats["moving_variance"],
            self.epsilon,
        )


def _numpy(value):
    # through a tensor: NumPy 2 warns about a TensorFlow variable's own `__array__`
    return np.asarray(ops.convert_to_numpy(ops.copy(value)), dtype=np.float64)
