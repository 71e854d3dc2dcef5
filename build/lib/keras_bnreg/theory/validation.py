"""Argument checks shared by the closed forms: each raises ValueError naming the argument.

Messages end in "Received: ..." as Keras' own do.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

SYMMETRY_RTOL = 1e-10  # relative to max |R|: tolerated asymmetry from float rounding
EIGEN_RTOL = 1e-10  # relative to the spectral bound: an eigenvalue this small counts as 0


def as_weights(name, value):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(
            f"{name} must be a vector (d,) or a kernel (d, nodes). Received: shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite. Received: {np.sum(~np.isfinite(array))} NaN/inf")
    return array


def as_inputs(name, value, size):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim < 1 or array.shape[-1] != size:
        raise ValueError(
            f"{name} must have a last dimension of {size} to match w. Received: shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite. Received: {np.sum(~np.isfinite(array))} NaN/inf")
    return array


def as_same_shape(name, value, w):
    array = np.asarray(value, dtype=np.float64)
    if array.shape != w.shape:
        raise ValueError(f"{name} must have the shape of w, {w.shape}. Received: {array.shape}")
    return array


def as_second_moment(name, value, size=None):
    """A symmetric positive semi-definite (size, size) matrix, or ValueError naming `name`."""
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"{name} must be a square matrix. Received: shape {matrix.shape}")
    if size is not None and matrix.shape != (size, size):
        raise ValueError(
            f"{name} must have shape ({size}, {size}) to match the weights. "
            f"Received: shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must be finite. Received: {np.sum(~np.isfinite(matrix))} NaN/inf")
    scale = np.max(np.abs(matrix))
    asymmetry = np.max(np.abs(matrix - matrix.T))
    if asymmetry > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name} must be symmetric. Received: max |{name} - {name}^T| = {asymmetry:.3g}"
        )
    matrix = (matrix + matrix.T) / 2
    # Smallest eigenvalue >= -shift exactly when R + shift I has a Cholesky factor (fast).
    shift = EIGEN_RTOL * spectral_bound(matrix)
    try:
        np.linalg.cholesky(matrix + shift * np.eye(len(matrix)))
    except np.linalg.LinAlgError:
        lowest = linalg.eigh(matrix, eigvals_only=True, subset_by_index=[0, 0])[0]
        raise ValueError(
            f"{name} must be positive semi-definite. Received: smallest eigenvalue {lowest:.3g}"
        ) from None
    return matrix


def spectral_bound(matrix):
    return max(float(np.max(np.sum(np.abs(matrix), axis=1))), np.finfo(float).tiny)


def eigh(matrix):
    # LAPACK's MRRR driver: on 784 x 784 about 10x faster than numpy.linalg.eigh here.
    return linalg.eigh(matrix, driver="evr")


def as_per_node(name, value, w):
    array = np.asarray(value, dtype=np.float64)
    allowed = [()] if w.ndim == 1 else [(), (w.shape[1],)]
    if array.shape not in allowed:
        wanted = "a scalar" if w.ndim == 1 else f"a scalar or shape ({w.shape[1]},)"
        raise ValueError(f"{name} must be {wanted}. Received: shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite. Received: {value}")
    return array


def as_nonnegative(name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0. Received: {value!r}") from None
    if not number >= 0 or not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number >= 0. Received: {value!r}")
    return number


def require_nonzero_columns(name, w):
    norms = np.sum(w * w, axis=0)
    if np.any(norms == 0):
        raise ValueError(f"{name} must not be zero (w^T w > 0). Received: a zero weight vector")


def quadratic(w, matrix):
    """`w^T M w` per column of w."""
    return np.sum(w * (matrix @ w), axis=0)


def require_positive_quadratic(value, what):
    if np.any(value <= 0):
        raise ValueError(
            f"w must not lie in the null space of second_moment ({what} > 0). "
            f"Received: {what} = {np.min(value):.3g}"
        )
    return value


def ridge_arguments(w_star, hessian, alpha):
    w_star = as_weights("w_star", w_star)
    if w_star.ndim != 1:
        raise ValueError(f"w_star must be a vector (d,). Received: shape {w_star.shape}")
    hessian = as_second_moment("hessian", hessian, len(w_star))
    alpha = as_nonnegative("alpha", alpha)
    if alpha == 0:
        lowest = linalg.eigh(hessian, eigvals_only=True, subset_by_index=[0, 0])[0]
        if lowest <= EIGEN_RTOL * spectral_bound(hessian):
            raise ValueError(
                "hessian must be positive definite when alpha is 0. "
                f"Received: smallest eigenvalue {lowest:.3g}"
            )
    return w_star, hessian, alpha
