"""Shared fixtures: small MNIST-shaped data sets that the tests write themselves (helpers in
helpers.py)."""

from __future__ import annotations

import os
import sys

import pytest
from helpers import ROOT, write_npz

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def small_npz(tmp_path_factory):
    """A Keras-layout mnist.npz with 600 train / 200 test synthetic digits."""
    return write_npz(tmp_path_factory.mktemp("data") / "mnist.npz")


@pytest.fixture(scope="session")
def small_dataset(small_npz):
    from keras_bnreg import data

    return data.load(str(small_npz), amplitude=2.0)
