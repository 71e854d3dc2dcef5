"""What every source's arrays must be: MNIST-shaped images of pixel values and labels 0..9.

Every loader (`sources`, `idx`) hands its four arrays to `validated`, which refuses anything
else with a one-line `DataError`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from keras_bnreg import checks


class DataError(checks.InputError):
    """A data source is missing or malformed; the message is one user-facing line."""


@dataclass(frozen=True)
class RawMnist:
    x_train: np.ndarray  # pixel values 0..255 (N, 28, 28): uint8, or float32 if not integers
    y_train: np.ndarray  # int64 (N,), 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # one of SOURCES
    location: str  # path or description


def validated(x_train, y_train, x_test, y_test, source, location, notify=None) -> RawMnist:
    """The four arrays checked and normalised: images (N, 28, 28) of pixel values 0..255
    (`pixels`), labels int64 0..9, as many labels as images, no empty split.

    Raises:
        DataError: naming the source and what is wrong.
    """
    out = {}
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim == 2 and images.shape[1] == 784:
            images = images.reshape(-1, 28, 28)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{location}: x_{split} has shape {images.shape}, expected (N, 28, 28) images"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{location}: x_{split} has {len(images)} images but y_{split} "
                f"has {len(labels)} labels"
            )
        if len(images) == 0:
            raise DataError(f"{location}: the {split} split is empty")
        images = pixels(images, f"{location}: x_{split}", notify)
        numeric = np.issubdtype(labels.dtype, np.integer) or np.issubdtype(
            labels.dtype, np.floating
        )
        if (
            not numeric
            or not np.all(np.isfinite(labels))
            or not np.all(labels == np.round(labels))
            or labels.min() < 0
            or labels.max() > 9
        ):
            raise DataError(
                f"{location}: y_{split} labels must be integers 0..9. "
                f"Received: dtype {labels.dtype}"
            )
        out[split] = (images, labels.astype(np.int64))
    return RawMnist(*out["train"], *out["test"], source, location)


def pixels(images, where, notify) -> np.ndarray:
    """Pixel values 0..255: integers as uint8; floats in [0, 1] read as `image / 255` (with
    a notice) and stored as float32 `image * 255`; anything else refused."""
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number):
        raise DataError(f"{where} must hold numbers. Received: dtype {images.dtype}")
    if np.issubdtype(images.dtype, np.complexfloating) or not np.all(np.isfinite(images)):
        raise DataError(f"{where} must hold finite real numbers. Received: dtype {images.dtype}")
    low, high = images.min(), images.max()
    if np.issubdtype(images.dtype, np.floating) and low >= 0 and high <= 1:
        (notify or print_notice)(
            f"notice: {where} holds floats in [0, 1]: read as image / 255 (pixel = value * 255)"
        )
        return (images.astype(np.float32) * np.float32(255.0)).astype(np.float32)
    if low < 0 or high > 255:
        raise DataError(
            f"{where} pixels must be integers 0..255 or floats in [0, 1]. "
            f"Received: values {low!r}..{high!r}"
        )
    if not np.all(images == np.round(images)):
        raise DataError(
            f"{where} pixels must be integers 0..255 or floats in [0, 1]. "
            f"Received: non-integer values up to {high!r}"
        )
    return images.astype(np.uint8)


def print_notice(message) -> None:
    print(message, file=sys.stderr)
