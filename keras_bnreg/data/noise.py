"""The paper's fixed additive noise at a signal-to-noise ratio (README: interpretations).

`sigma^2 = mean over pixels of Var_train(x_pixel) / snr` for the scaled inputs; the noise is
drawn once per image and stored in raw pixel units (`dataset.prepare`).
"""

from __future__ import annotations

import numpy as np

from keras_bnreg import checks
from keras_bnreg.data.validation import DataError


def noise_sigma(x_train_scaled, snr) -> float:
    """`sqrt(mean over pixels of the per-pixel variance of the training inputs / snr)`."""
    checks.positive_finite("snr", snr, DataError)
    variance = np.var(np.asarray(x_train_scaled, dtype=np.float64), axis=0).mean()
    return float(np.sqrt(variance / snr))


def add_raw_noise(x, sigma, scale, rng, dtype=np.float32) -> np.ndarray:
    """`x + N(0, sigma^2) / scale` in `dtype`: noise of std `sigma` in scaled units, added to
    raw pixel values `x` (the model multiplies them by `scale`)."""
    dtype = np.dtype(dtype)
    noise = rng.normal(0.0, sigma, size=x.shape).astype(dtype)
    return (x.astype(dtype) + noise / dtype.type(scale)).astype(dtype)
