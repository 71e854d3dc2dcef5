"""The validation split held out of the training split (the baseline's rate selection)."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_bnreg import checks
from keras_bnreg.data.dataset import Dataset
from keras_bnreg.data.validation import DataError


def hold_out(dataset: Dataset, fraction: float, seed: int = 0):
    """Split a seeded random `fraction` of the training split off for validation.

    Returns:
        `(dataset with the remaining training rows, (x_validation, y_validation))`.
    """
    checks.fraction("validation fraction", fraction, DataError, low_open=True)
    n = len(dataset.x_train)
    size = int(round(n * fraction))
    if size < 1 or size >= n:
        raise DataError(
            f"validation fraction {fraction} of {n} training images leaves an empty split"
        )
    order = np.random.default_rng(seed).permutation(n)
    validation, train = np.sort(order[:size]), np.sort(order[size:])
    remaining = dataclasses.replace(
        dataset, x_train=dataset.x_train[train], y_train=dataset.y_train[train]
    )
    return remaining, (dataset.x_train[validation], dataset.y_train[validation])
