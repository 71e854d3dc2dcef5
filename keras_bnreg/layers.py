"""A BatchNormalization that exposes what the paper reasons about."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_bnreg.measures import fold_batchnorm


@keras.saving.register_keras_serializable(package="keras_bnreg")
class InspectableBatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization, plus the latest training batch's statistics.

    Behaves exactly like `keras.layers.BatchNormalization` (same arguments, same
    outputs, same moving-statistics update). In addition it keeps the mean and the
    (biased) variance of the most recent training batch in the non-trainable
    variables `batch_mean` and `batch_variance`, and folds itself into the Dense
    layer before it (`fold`): `w_bn = gamma * w / sqrt(moving_variance + epsilon)`,
    the paper's BN weight of Eq. 11-12 with the moving statistics in place of the
    batch ones.

    Args:
        **kwargs: as for `keras.layers.BatchNormalization`.
    """

    def build(self, input_shape):
        super().build(input_shape)
        shape = (input_shape[self.axis],)
        self.batch_mean = self.add_weight(
            shape=shape,
            name="batch_mean",
            initializer="zeros",
            trainable=False,
            autocast=False,
        )
        self.batch_variance = self.add_weight(
            shape=shape,
            name="batch_variance",
            initializer="ones",
            trainable=False,
            autocast=False,
        )

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable:
            axes = [i for i in range(len(inputs.shape)) if i != self.axis % len(inputs.shape)]
            # the variables are stored in the layer's variable dtype (float32 or float64)
            mean, variance = ops.moments(ops.cast(inputs, self.variable_dtype), axes=axes)
            self.batch_mean.assign(mean)
            self.batch_variance.assign(variance)
        return super().call(inputs, training=training, mask=mask)

    def statistics(self) -> dict:
        """NumPy copies of gamma, beta, the moving and the latest batch statistics."""
        n = self.moving_mean.shape[0]
        return {
            "gamma": _numpy(self.gamma) if self.scale else np.ones(n),
            "beta": _numpy(self.beta) if self.center else np.zeros(n),
            "moving_mean": _numpy(self.moving_mean),
            "moving_variance": _numpy(self.moving_variance),
            "batch_mean": _numpy(self.batch_mean),
            "batch_variance": _numpy(self.batch_variance),
        }

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
