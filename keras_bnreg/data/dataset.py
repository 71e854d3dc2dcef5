"""MNIST as a run takes it: raw pixel values, flattened, with the data amplitude its model
applies and, at an SNR, the fixed noise added (`prepare`); `load` reads a source first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bnreg import checks, measures
from keras_bnreg.data.noise import add_raw_noise, noise_sigma
from keras_bnreg.data.sources import load_raw
from keras_bnreg.data.validation import DataError, RawMnist

PAPER_TRAINING_SIZE = 60_000  # the full MNIST training split


@dataclass(frozen=True)
class Dataset:
    """MNIST as the model takes it: raw pixel values, flattened, with the scaling to apply.

    The model's first Dense layer sees `x * input_scale` (`input_scale = amplitude / 255`),
    which the model's `input_scaling` layer computes; `scaled` gives the same arrays in NumPy.
    """

    x_train: np.ndarray  # (N, 784) raw pixel values: uint8 0..255, or float32 raw units
    #   (noisy data: image + noise * 255 / amplitude, so that x * input_scale = scaled + noise)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    location: str
    amplitude: float
    snr: float | None
    noise_sigma: float | None  # std of the added noise in scaled units; None for clean data

    @property
    def input_scale(self) -> float:
        """`amplitude / 255`: what the model multiplies the raw pixel values by."""
        return self.amplitude / 255.0

    def scaled(self, x) -> np.ndarray:
        """`x * input_scale` as float32: what the model's first Dense layer sees."""
        return np.asarray(x, dtype=np.float32) * np.float32(self.input_scale)

    def notice(self) -> str:
        """One line naming the data: source, split sizes, and whether it is the paper's."""
        line = (
            f"data: {self.source} ({self.location}), {len(self.x_train):,} training / "
            f"{len(self.x_test):,} test digits"
        )
        if len(self.x_train) != PAPER_TRAINING_SIZE:
            line += f": not the paper's {PAPER_TRAINING_SIZE:,} training digits"
        return line

    def describe(self) -> dict:
        return {
            "source": self.source,
            "location": self.location,
            "n_train": int(len(self.x_train)),
            "n_test": int(len(self.x_test)),
            "amplitude": float(self.amplitude),
            "snr": None if self.snr is None else float(self.snr),
            "noise_sigma": None if self.noise_sigma is None else float(self.noise_sigma),
            # trace(R) / d = the mean eigenvalue of R = E[x x^T] of the training inputs
            "r_mean_eigenvalue": measures.mean_square(self.x_train) * self.input_scale**2,
            "inputs": "raw pixel values 0..255, scaled inside the model by amplitude / 255",
        }


def load(
    spec="auto",
    *,
    amplitude=1.0,
    snr=None,
    noise_seed=0,
    seed=0,
    data_dir=None,
    notify=None,
    dtype="float32",
) -> Dataset:
    """`load_raw` then `prepare` (noisy inputs in `dtype`)."""
    raw = load_raw(spec, seed=seed, data_dir=data_dir, notify=notify)
    return prepare(raw, amplitude=amplitude, snr=snr, noise_seed=noise_seed, dtype=dtype)


def load_for(config, notify=None) -> Dataset:
    """`load` with a `RunConfig`'s data settings (source, scaling, noise, split seed, dtype)."""
    names = ("amplitude", "snr", "noise_seed", "seed", "data_dir", "dtype")
    return load(config.data, notify=notify, **{name: getattr(config, name) for name in names})


def prepare(raw: RawMnist, amplitude=1.0, snr=None, noise_seed=0, dtype="float32") -> Dataset:
    """Flatten to (N, 784) raw pixel values; with `snr`, add fixed Gaussian noise.

    `sigma^2 = mean over pixels of Var_train(x_pixel) / snr` for the scaled inputs
    `x = image / 255 * amplitude`, drawn once per image from `SeedSequence(noise_seed)`: one
    stream for the training split, one for the test split. The noise is stored in raw units
    (`noise * 255 / amplitude`), so the model's `input_scaling` layer gives `x + noise`;
    noisy inputs are held in `dtype` ("float32" or "float64", the run's), clean ones as
    exact uint8.
    """
    dtype = np.dtype(dtype)
    scale = checks.input_scale(amplitude, DataError)
    x_train, x_test = _flat(raw.x_train), _flat(raw.x_test)
    sigma = None
    if snr is not None:
        sigma = noise_sigma(x_train.astype(dtype) * dtype.type(scale), snr)
        train_stream, test_stream = np.random.SeedSequence(noise_seed).spawn(2)
        x_train = add_raw_noise(x_train, sigma, scale, np.random.default_rng(train_stream), dtype)
        x_test = add_raw_noise(x_test, sigma, scale, np.random.default_rng(test_stream), dtype)
    for split, x in (("train", x_train), ("test", x_test)):
        if not np.all(np.isfinite(x)) or not np.any(x * np.float32(scale)):
            raise DataError(
                f"{raw.location}: x_{split} is not finite or all zero after scaling by "
                f"amplitude / 255. Received: amplitude {amplitude!r}"
            )
    return Dataset(
        x_train,
        raw.y_train.astype(np.int64),
        x_test,
        raw.y_test.astype(np.int64),
        raw.source,
        raw.location,
        float(amplitude),
        None if snr is None else float(snr),
        sigma,
    )


def _flat(images) -> np.ndarray:
    """(N, 28, 28) images as (N, 784) rows, contiguous."""
    return np.ascontiguousarray(images.reshape(len(images), -1))
