"""The paper's equations: closed forms against independent computations, and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from keras_bnreg import plots, theory


@pytest.fixture(scope="module")
def checks():
    return theory.run_checks()


def test_every_check_passes_and_every_finding_is_confirmed(checks):
    failed = [f"{c.equation}: {c.compared} ({c.status})" for c in checks if not c.passed]
    assert not failed, failed
    assert sum(c.finding for c in checks) >= 6
    assert {c.equation for c in checks} >= {
        "Eq. 2",
        "Eq. 3-11",
        "Eq. 15",
        "Fig. 1",
        "Eq. 16",
        "Eq. 17",
        "Eq. 18",
        "Eq. 19",
    }


def test_a_wrong_formula_would_fail_a_check():
    wrong = theory._compare("x", "a wrong value", 1.1, 1.0, 1e-6)
    assert not wrong.passed and wrong.status == "FAIL"
    missing = theory._compare("x", "a finding that is not there", 1.0, 1.0, 0.05, finding=True)
    assert not missing.passed and missing.status.startswith("FAIL")


def random_spd(d=4, seed=0):
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T + 0.5 * np.eye(d)


def test_constrained_minimiser_is_independent_of_r_and_beats_perturbations():
    rng = np.random.default_rng(1)
    w, r = rng.normal(size=4), random_spd()
    w_bn, alpha_b = theory.constrained_minimiser(w, r)
    assert w_bn @ w == pytest.approx(1.0)
    best = theory.bn_objective(w_bn, w, r)
    for _ in range(50):  # feasible perturbations (orthogonal to w) never do better
        step = rng.normal(size=4)
        step -= (step @ w) / (w @ w) * w
        assert theory.bn_objective(w_bn + 0.1 * step, w, r) > best
    assert alpha_b == pytest.approx(2 * np.sqrt(w @ r @ w) / (w @ w))
    np.testing.assert_allclose(theory.constrained_minimiser(w, 3 * r + np.eye(4))[0], w_bn)


def test_eigen_forms_and_square_root():
    r, w = random_spd(5, 2), np.arange(1.0, 6.0)
    assert theory.eigen_quadratic(w, r) == pytest.approx(w @ r @ w)
    root = theory.matrix_square_root(r)
    np.testing.assert_allclose(root @ root, r, atol=1e-10)
    diagonal = np.diag([5.0, 4, 3, 2, 1])  # the printed Eq. 15 holds when R is diagonal
    assert theory.eigen_quadratic_as_printed(w, diagonal) == pytest.approx(w @ diagonal @ w)


def test_shrinkage_scales_each_eigen_direction():
    h, w_star = random_spd(3, 3), np.array([1.0, -2.0, 0.5])
    eigenvalues, q = np.linalg.eigh(h)
    shrunk = theory.l2_shrinkage(w_star, h, 0.7)
    np.testing.assert_allclose(q.T @ shrunk, eigenvalues / (eigenvalues + 0.7) * (q.T @ w_star))
    np.testing.assert_allclose(theory.l2_shrinkage(w_star, h, 0.0), w_star)


def test_noise_forms():
    w = np.array([1.0, 2.0, 2.0])
    assert theory.noise_penalty(w, 0.5) == pytest.approx(0.25 * 9)
    np.testing.assert_allclose(theory.noisy_second_moment(np.eye(3), 2.0), 5 * np.eye(3))
    assert theory.bn_noise_term(w, 2.0, 0.8 * np.eye(3), 0.5) == pytest.approx(
        theory.bn_noise_term_equal_eigenvalues(2.0, 0.8, 0.5)
    )


def test_bn_forms_agree_for_zero_mean_data():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 3))
    x -= x.mean(0)
    w = rng.normal(size=3)
    second = x.T @ x / len(x)
    np.testing.assert_allclose(
        theory.bn_linear_unit(x, w, 1.3, second),
        theory.bn_centred(x, w, 1.3, 0.0, np.zeros(3), second),
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: theory.bn_objective(np.ones(3), np.ones(4), np.eye(4)), "w_bn must have shape"),
        (
            lambda: theory.constrained_minimiser(np.ones(2), np.array([[1.0, 2], [0, 1]])),
            "second_moment must be symmetric",
        ),
        (
            lambda: theory.constrained_minimiser(np.ones(2), -np.eye(2)),
            "second_moment must be positive definite",
        ),
        (
            lambda: theory.bn_linear_unit(np.ones((5, 3)), np.ones(2), 1.0, np.eye(2)),
            "x must have shape",
        ),
        (lambda: theory.noise_penalty(np.ones(2), -1.0), "sigma must be a finite number >= 0"),
        (
            lambda: theory.bn_centred(
                np.ones((2, 2)), np.ones(2), 1, 0, np.zeros(2), np.eye(2), epsilon=-1
            ),
            "epsilon must be",
        ),
        (lambda: theory.l2_shrinkage(np.ones(3), np.eye(2), 1.0), "hessian must be a square"),
        (lambda: theory.bn_noise_term_equal_eigenvalues(1.0, -0.5, 1.0), "eigenvalue must be"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "Received:" in str(error.value)


def test_command_line_exit_status():
    result = subprocess.run(
        [sys.executable, "-m", "keras_bnreg.theory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FINDING" in result.stdout and "PASS" in result.stdout


def test_fig1_is_drawn(tmp_path):
    plots.plot_fig1(tmp_path / "fig1.png")
    assert (tmp_path / "fig1.png").stat().st_size > 10_000
