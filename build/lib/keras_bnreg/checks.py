"""Every value check of the project in one place; imports neither Keras nor TensorFlow.

Each check raises the error class its caller names (`ConfigError`, `DataError`, ...), with
a one-line message that ends in "Received: ...", so the CLIs can print it as it is.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # Python floats: comparing a float64 with
FLOAT32_MAX = float(np.finfo(np.float32).max)  # np.float32 would cast it down (NEP 50)
SEED_MAX = 2**31 - 1  # numpy's legacy seed takes < 2**32; TF op seeds are int32-safe below 2**31


class InputError(ValueError):
    """A user-supplied value is unusable; the message is one user-facing line."""


def positive_finite(name, value, error=InputError) -> float:
    """`value` as a float, if it is a finite number > 0 (in float64)."""
    try:
        number = float(value)
        ok = math.isfinite(number) and number > 0 and not isinstance(value, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise error(f"{name} must be a finite number > 0. Received: {value!r}")
    return number


def float32_positive(name, value, error=InputError) -> float:
    """A finite number > 0 that stays finite and non-zero in float32 (where Keras uses it)."""
    number = positive_finite(name, value, error)
    if not FLOAT32_TINY <= number <= FLOAT32_MAX:  # compared in float64: no overflowing cast
        raise error(
            f"{name} must lie between {FLOAT32_TINY:.3g} and {FLOAT32_MAX:.3g} "
            f"(float32, as the model computes). Received: {value!r}"
        )
    return number


def at_least_one(name, value, error=InputError) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise error(f"{name} must be an integer >= 1. Received: {value!r}")
    return int(value)


def seed(name, value, error=InputError) -> int:
    """A seed numpy, Keras and TensorFlow all accept: an integer in [0, 2**31 - 1]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not 0 <= value <= SEED_MAX
    ):
        raise error(f"{name} must be an integer in [0, {SEED_MAX}]. Received: {value!r}")
    return int(value)


def fraction(name, value, error=InputError, *, low_open=False) -> float:
    """A number in [0, 1) (or (0, 1) with `low_open`)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    low_ok = number > 0 if low_open else number >= 0
    if not (low_ok and number < 1):
        bracket = "(" if low_open else "["
        raise error(f"{name} must be in {bracket}0, 1). Received: {value!r}")
    return number


def input_scale(amplitude, error=InputError) -> float:
    """The model's input scaling `amplitude / 255`, checked to keep pixels 1..255 finite and
    non-zero in float32 (`1e-300` would make every input 0; `1e308` would overflow)."""
    amplitude = positive_finite("amplitude", amplitude, error)
    scale = amplitude / 255.0  # float64; the smallest and largest scaled pixels: 1 and 255
    if not (FLOAT32_TINY <= scale and 255.0 * scale <= FLOAT32_MAX):
        raise error(
            "amplitude must keep the scaled pixels (1..255) / 255 * amplitude finite and "
            f"non-zero in float32: about {255 * FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}. "
            f"Received: {amplitude!r}"
        )
    return amplitude / 255.0


def parameters_fit_in_memory(widths, input_dim, error=InputError, *, copies=6) -> None:
    """Refuse layer widths whose weights (times `copies`: the variables, Adam's two moments,
    gradients and slack) exceed this machine's physical memory."""
    sizes = [input_dim, *widths]
    count = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    needed = count * 4 * copies
    available = physical_memory()
    if available is not None and needed > available:
        raise error(
            f"hidden widths {list(widths)} need about {needed / 2**30:.3g} GiB for the weights "
            f"and optimizer state; this machine has {available / 2**30:.3g} GiB. "
            f"Received: {list(widths)}"
        )


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def writable_directory(name, path, error=InputError) -> Path:
    """`path` is a writable directory, or could be created as one; creates nothing.

    The nearest existing ancestor must be a directory that this process may write into.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise error(f"{name} {path} is not a directory. Received: {str(path)!r}")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise error(f"{name} {path}: {existing} is not a directory. Received: {str(path)!r}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise error(f"{name} {path} is not writable ({existing}). Received: {str(path)!r}")
    return path
