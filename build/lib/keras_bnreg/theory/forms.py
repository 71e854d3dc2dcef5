"""The closed forms of the paper's Section III (Eq. 1-19), NumPy/SciPy only.

Annamalai & Thakur, "Theoretical Insight into Batch Normalization: Data Dependent Auto-Tuning
of Regularization Rate". Notation: `R = E[x x^T]` (the uncentred second moment; the paper
calls it the covariance and assumes `E[x] = 0`), `w` a node's weight vector (a column of a
Dense kernel), `gamma` and `beta` BN's scale and shift, `sigma` the standard deviation of the
input noise, `alpha` a regularization rate.

A function takes one node (`w` of shape (d,)) or several (`w` of shape (d, nodes), one column
per node) and returns a scalar or one value per node. Forms marked "as printed" reproduce a
relation exactly as the paper prints it where that differs from the correct one; they exist to
measure the difference. The L2 side of the comparison (Eq. 12-14, Fig. 1) is in `ridge.py`;
`checks.py` and `noise_checks.py` verify every form two independent ways.
"""

from __future__ import annotations

import numpy as np

from keras_bnreg.theory.validation import (
    as_inputs,
    as_nonnegative,
    as_per_node,
    as_same_shape,
    as_second_moment,
    as_weights,
    eigh,
    quadratic,
    require_nonzero_columns,
    require_positive_quadratic,
)


def regularization_rate(w, second_moment):
    """The regularization rate BN sets for a node, Eq. 3 and 8.

    `alpha_BN = [E (w^T x)^2]^(1/2) = sqrt(w^T R w)`.

    Args:
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]`, symmetric positive semi-definite (d, d).

    Returns:
        `sqrt(w^T R w)` per node.
    """
    w = as_weights("w", w)
    second_moment = as_second_moment("second_moment", second_moment, len(w))
    return np.sqrt(np.maximum(quadratic(w, second_moment), 0.0))


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
    w = as_weights("w", w)
    x = as_inputs("x", x, len(w))
    second_moment = as_second_moment("second_moment", second_moment, len(w))
    gamma, beta = as_per_node("gamma", gamma, w), as_per_node("beta", beta, w)
    epsilon = as_nonnegative("epsilon", epsilon)
    variance = require_positive_quadratic(
        quadratic(w, second_moment) + epsilon, "w^T R w + epsilon"
    )
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
    w = as_weights("w", w)
    x = as_inputs("x", x, len(w))
    mean = as_inputs("mean", mean, len(w))
    if mean.ndim != 1:
        raise ValueError(f"mean must be a vector of shape ({len(w)},). Received: {mean.shape}")
    covariance = as_second_moment("covariance", covariance, len(w))
    gamma, beta = as_per_node("gamma", gamma, w), as_per_node("beta", beta, w)
    epsilon = as_nonnegative("epsilon", epsilon)
    variance = require_positive_quadratic(quadratic(w, covariance) + epsilon, "w^T Cov w + epsilon")
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
    w = as_weights("w", w)
    second_moment = as_second_moment("second_moment", second_moment, len(w))
    gamma = as_per_node("gamma", gamma, w)
    return gamma * w / np.sqrt(require_positive_quadratic(quadratic(w, second_moment), "w^T R w"))


def bn_objective(w_bn, w, second_moment):
    """The objective BN is said to minimise, Eq. 3 and 8: `F = sqrt(w^T R w) * w_bn^T w_bn`.

    Args:
        w_bn: candidate BN weight, same shape as `w`.
        w: weight vector (d,) or kernel (d, nodes).
        second_moment: `R = E[x x^T]` (d, d), symmetric positive semi-definite.

    Returns:
        `F` per node.
    """
    w = as_weights("w", w)
    w_bn = as_same_shape("w_bn", w_bn, w)
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
    w = as_weights("w", w)
    w_bn = as_same_shape("w_bn", w_bn, w)
    alpha_b = as_per_node("alpha_b", alpha_b, w)
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
    w = as_weights("w", w)
    require_nonzero_columns("w", w)
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
    w = as_weights("w", w)
    rate = require_positive_quadratic(regularization_rate(w, second_moment), "sqrt(w^T R w)")
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
    second_moment = as_second_moment("second_moment", second_moment)
    eigenvalues, eigenvectors = eigh(second_moment)
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
    w = as_weights("w", w)
    second_moment = as_second_moment("second_moment", second_moment, len(w))
    eigenvalues, eigenvectors = eigh(second_moment)
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
    w = as_weights("w", w)
    second_moment = as_second_moment("second_moment", second_moment, len(w))
    eigenvalues = eigh(second_moment)[0][::-1]
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
    w = as_weights("w", w)
    gamma = as_per_node("gamma", gamma, w)
    quadratic = require_positive_quadratic(eigen_quadratic_form(w, second_moment), "w^T R w")
    return gamma * w / np.sqrt(quadratic)


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
    w = as_weights("w", w)
    sigma = as_nonnegative("sigma", sigma)
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
    second_moment = as_second_moment("second_moment", second_moment)
    sigma = as_nonnegative("sigma", sigma)
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
    w = as_weights("w", w)
    require_nonzero_columns("w", w)
    sigma = as_nonnegative("sigma", sigma)
    gamma = as_per_node("gamma", gamma, w)
    noisy = quadratic(
        w, noisy_second_moment(as_second_moment("second_moment", second_moment, len(w)), sigma)
    )
    noisy = require_positive_quadratic(noisy, "w^T R_n w")
    return sigma**2 * gamma**2 * np.sum(w * w, axis=0) / noisy


def bn_noise_penalty_equal_eigenvalues(eigenvalue, sigma, gamma=1.0):
    """Eq. 19: the noise term when all eigenvalues of R equal `lambda`.

    `sigma^2 gamma^2 / (lambda + sigma^2)`. For any R it holds exactly with `lambda` replaced
    by the Rayleigh quotient `w^T R w / w^T w` (see `rayleigh_quotient`). Limits:
    `gamma^2` for `sigma^2 >> lambda` and `sigma^2 gamma^2 / lambda` for `sigma^2 << lambda`
    (the paper prints `gamma^2 / lambda` for the latter).

    Args:
        eigenvalue: the common eigenvalue `lambda`, >= 0 (a scalar, or one per node).
        sigma: noise standard deviation, >= 0.
        gamma: BN scale (a scalar, or one per node, broadcast against `eigenvalue`).

    Returns:
        The noise term (array-like in `eigenvalue` and `gamma`).
    """
    eigenvalue = np.asarray(eigenvalue, dtype=np.float64)
    if not np.all(eigenvalue >= 0):
        raise ValueError(
            f"eigenvalue must be >= 0 (R is positive semi-definite). Received: {eigenvalue}"
        )
    sigma = as_nonnegative("sigma", sigma)
    gamma = np.asarray(gamma, dtype=np.float64)
    if not np.all(np.isfinite(gamma)):
        raise ValueError(f"gamma must be finite. Received: {gamma}")
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
    w = as_weights("w", w)
    require_nonzero_columns("w", w)
    second_moment = as_second_moment("second_moment", second_moment, len(w))
    return quadratic(w, second_moment) / np.sum(w * w, axis=0)
