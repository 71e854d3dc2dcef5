"""MNIST's own file format, IDX: one file read (`read_idx`), or the four of a directory."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from keras_bnreg.data.validation import DataError, RawMnist, validated

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {3: 2051, 1: 2049}  # dimensions -> magic number (images, labels)


def read_idx(path) -> np.ndarray:
    """One IDX file (gzip or not): magic 2051 images (N, rows, cols), 2049 labels (N,)."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read IDX file ({error})") from None
    if len(content) < 8:
        raise DataError(f"{path}: too short for an IDX header ({len(content)} bytes)")
    magic = int.from_bytes(content[:4], "big")
    dims = content[3]
    if magic not in IDX_MAGIC.values() or IDX_MAGIC.get(dims) != magic:
        raise DataError(f"{path}: bad IDX magic number {magic} (expected 2051 or 2049)")
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    expected = math.prod(shape)  # Python ints: a forged header cannot overflow
    if len(content) - header != expected:
        raise DataError(
            f"{path}: {len(content) - header} data bytes, expected {expected} for shape {shape}"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


def load_idx_dir(path, notify=None) -> RawMnist:
    """The four MNIST IDX files in the directory `path` (each gzip or not)."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [
            path / name
            for name in (
                stem,
                stem + ".gz",
                stem.replace("-idx", ".idx"),
                stem.replace("-idx", ".idx") + ".gz",
            )
        ]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(
                f"--data {path}: {stem}[.gz] missing (expected the four MNIST IDX files)"
            )
        arrays[key] = read_idx(found)
    return validated(*arrays.values(), "idx", str(path), notify)
