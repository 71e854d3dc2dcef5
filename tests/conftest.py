"""Shared fixtures: small MNIST-shaped data sets that the tests write themselves."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST_T10K = ROOT.parent / "shared" / "data" / "mnist-t10k"


def person_environment() -> dict:
    """os.environ without what the test harness sets and a person would not."""
    harness = ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "BNREG_MODELS", "BNREG_RESULTS")
    return {key: value for key, value in os.environ.items() if key not in harness}


def synthetic_digits(n, seed=0):
    """uint8 images (n, 28, 28) of 10 learnable classes: a class template plus noise."""
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(1234).random((10, 28, 28)) * 255
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = 0.6 * templates[labels] + 0.4 * rng.random((n, 28, 28)) * 255
    return images.astype(np.uint8), labels.astype(np.int64)


def write_npz(path, n_train=600, n_test=200, seed=0):
    x_train, y_train = synthetic_digits(n_train, seed)
    x_test, y_test = synthetic_digits(n_test, seed + 1)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="session")
def small_npz(tmp_path_factory):
    """A Keras-layout mnist.npz with 600 train / 200 test synthetic digits."""
    return write_npz(tmp_path_factory.mktemp("data") / "mnist.npz")


@pytest.fixture(scope="session")
def small_dataset(small_npz):
    from keras_bnreg import data

    return data.load(str(small_npz), amplitude=2.0)
