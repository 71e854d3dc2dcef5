"""A BatchNormalization that exposes what the paper reasons about."""

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
