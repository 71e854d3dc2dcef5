"""L2 regularisation of a quadratic loss (Eq. 12-14) and the 2-D example of Fig. 1.

The comparison the paper draws: an L2 rate alpha shrinks the optimum `w*` of
`(w - w*)^T H (w - w*) / 2` along H's eigenvectors by `lambda_i / (lambda_i + alpha)`;
BN sets `alpha = sqrt(w^T R w)` (`forms.regularization_rate`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_bnreg.theory.forms import regularization_rate
from keras_bnreg.theory.validation import (
    as_inputs,
    as_nonnegative,
    as_second_moment,
    as_weights,
    eigh,
    ridge_arguments,
)


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
    w_star = as_weights("w_star", w_star)
    hessian = as_second_moment("hessian", hessian, len(w_star))
    w = as_inputs("w", w, len(w_star))
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
    alpha = as_nonnegative("alpha", alpha)
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
    w_star, hessian, alpha = ridge_arguments(w_star, hessian, alpha)
    eigenvalues, eigenvectors = eigh(hessian)
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
    w_star, hessian, alpha = ridge_arguments(w_star, hessian, alpha)
    eigenvalues, eigenvectors = eigh(hessian)
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
    w_star = as_weights("w_star", w_star)
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
