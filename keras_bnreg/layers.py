"""The package's two Keras layers: a BatchNormalization that exposes what the paper reasons
about, and the input scaling every model of this project starts with."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_bnreg.measures import fold_batchnorm


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

    Args:
        scale: the factor, `amplitude / 255` in this project (raw pixels in).
        **kwargs: as for `keras.layers.Layer` (`name`, `dtype`).
    """

    constant_in_training = True  # read by pairs: the inputs after it never change

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

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
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="keras_bnreg")
class InspectableBatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization that also folds itself into the layer before it.

    Behaves exactly like `keras.layers.BatchNormalization` (same arguments, variables,
    outputs and moving-statistics update); the monitor measures stock BN just as well.
    In addition `fold` gives the effective weight of the Dense layer before it,
    `w_bn = gamma * w / sqrt(moving_variance + epsilon)`: the paper's BN weight of
    Eq. 11-12 with the moving statistics in place of the batch ones.

    Models saved by earlier versions of this package kept the latest training batch's
    mean and variance in two more variables; they load, and those two values are dropped.

    Args:
        **kwargs: as for `keras.layers.BatchNormalization`.
    """

    def load_own_variables(self, store):
        legacy = len(self.variables) + 2  # gamma, beta, moving stats + batch mean, variance
        if len(store.keys()) == legacy:
            store = {str(index): store[str(index)] for index in range(len(self.variables))}
        super().load_own_variables(store)

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
    return np.asarray(ops.convert_to_numpy(value), dtype=np.float64)
