"""The epsilon identity in float64: amplitude a with epsilon e trains exactly like amplitude 1
with epsilon e / a^2 (the `dtype` and `record_kernels` settings, `KernelRecorder`)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from keras_bnreg import experiment, files
from keras_bnreg.config import ConfigError, RunConfig

AMPLITUDE, EPSILON = 3.0, 1e-3  # 3: not a power of two, so no exact float32 scaling


@pytest.fixture(scope="module")
def kernels(small_npz, tmp_path_factory):
    """Recorded first layers of (a, e), (1, e/a^2) and (1, e), hidden 8, 2 epochs, float64."""
    out = tmp_path_factory.mktemp("identity")
    base = RunConfig(
        data=str(small_npz),
        hidden=(8,),
        epochs=2,
        batch_size=100,
        out=str(out),
        save_model=False,
        record_kernels=True,
        dtype="float64",
        jit_compile=False,
    )
    runs = {
        "scaled": (AMPLITUDE, EPSILON),
        "equivalent": (1.0, EPSILON / AMPLITUDE**2),
        "control": (1.0, EPSILON),
    }
    recorded = {}
    for role, (amplitude, epsilon) in runs.items():
        config = base.replace(amplitude=amplitude, bn_epsilon=(epsilon, EPSILON), run_name=role)
        result = experiment.run(config, verbose=0)
        assert result.status == "completed"
        with np.load(result.run_dir / "kernels.npz") as arrays:
            recorded[role] = {name: arrays[name] for name in arrays.files}
    return recorded


def max_relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.slow
def test_recorder_keeps_every_epoch_in_the_run_dtype(kernels):
    scaled = kernels["scaled"]
    assert list(scaled["epoch"]) == [0, 1, 2]
    assert scaled["kernel"].shape == (3, 784, 8) and scaled["kernel"].dtype == np.float64
    for name in ("bias", "gamma", "beta", "moving_mean", "moving_variance"):
        assert scaled[name].shape == (3, 8) and scaled[name].dtype == np.float64
    assert not np.array_equal(scaled["kernel"][0], scaled["kernel"][-1])  # it trained


@pytest.mark.slow
def test_float64_pair_is_the_same_training_problem(kernels):
    scaled, equivalent = kernels["scaled"], kernels["equivalent"]
    np.testing.assert_array_equal(scaled["kernel"][0], equivalent["kernel"][0])
    for epoch in (1, 2):
        assert max_relative(scaled["kernel"][epoch], equivalent["kernel"][epoch]) < 1e-9
    for name in ("gamma", "beta"):
        assert max_relative(scaled[name][-1], equivalent[name][-1]) < 1e-9
    # BN sees a x^T w + b: its moving mean scales with a; its moving variance with a^2,
    # but for the weight momentum^steps its starting value 1 still has after 2 x 6 steps.
    mean = scaled["moving_mean"][-1] - scaled["bias"][-1]
    other = AMPLITUDE * (equivalent["moving_mean"][-1] - equivalent["bias"][-1])
    assert max_relative(mean, other) < 1e-9
    start = 0.99**12
    variance = AMPLITUDE**2 * (equivalent["moving_variance"][-1] - start)
    assert max_relative(scaled["moving_variance"][-1] - start, variance) < 1e-9


@pytest.mark.slow
def test_the_control_is_a_different_problem(kernels):
    gap = max_relative(kernels["scaled"]["kernel"][-1], kernels["control"]["kernel"][-1])
    assert gap > 1e-3


def test_dtype_setting_is_validated():
    with pytest.raises(ConfigError, match=r"^dtype must be one of float32, float64\. Received"):
        RunConfig(dtype="float16").validate()


# --- the study's analysis, on arrays made by hand ----------------------------------------------


def test_max_relative_difference_per_epoch():
    from keras_bnreg.studies import identity

    b = np.stack([np.ones((3, 2)), 2 * np.ones((3, 2))])
    a = b.copy()
    a[1, 0, 0] += 0.5
    np.testing.assert_allclose(identity.max_relative_difference(a, b), [0.0, 0.25])
    with pytest.raises(ValueError, match="same shape"):
        identity.max_relative_difference(a, b[:1])


def test_epoch_rows_final_agreement_and_verdict():
    from keras_bnreg.studies import identity

    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 5, 4))
    rows = identity.epoch_rows(2.0, "float64", kernel, kernel * (1 + 1e-12), kernel + 0.1)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert all(r["pair_max_rel"] < 1e-11 and r["control_max_rel"] > 1e-2 for r in rows)
    assert identity.verdict(rows) == "exact"
    assert identity.verdict([{**r, "pair_max_rel": 1e-6} for r in rows]) == "not shown"
    assert identity.verdict([{**r, "dtype": "float32"} for r in rows]) == "no data"
    state = {name: rng.uniform(0.5, 2.0, size=(3, 4)) for name in ("gamma", "beta", "bias")}
    equivalent = {"kernel": kernel, **state, "moving_mean": rng.normal(size=(3, 4))}
    equivalent["moving_variance"] = rng.uniform(1.0, 2.0, size=(3, 4))
    weight = 0.9
    scaled = dict(equivalent)
    scaled["moving_mean"] = 2.0 * (equivalent["moving_mean"] - state["bias"]) + state["bias"]
    scaled["moving_variance"] = 4.0 * (equivalent["moving_variance"] - weight) + weight
    agreement = identity.final_agreement(2.0, scaled, equivalent, weight)
    assert set(agreement) == {
        f"{name}_max_rel" for name in ("kernel", "gamma", "beta", "moving_mean", "moving_variance")
    }
    assert max(agreement.values()) < 1e-12
    assert identity.final_agreement(2.0, scaled, equivalent, 0.0)["moving_variance_max_rel"] > 0.1


@pytest.mark.slow
def test_reproduce_identity_writes_the_table_the_figure_and_the_section(small_npz, tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, "reproduce.py", "identity", "--data", str(small_npz)]
    command += ["--hidden", "8", "--epochs", "2", "--jobs", "1", "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = files.read_csv(out / "identity.csv")
    assert len(rows) == 4 * 2 * 3  # amplitudes x dtypes x epochs 0..2
    exact = [r for r in rows if r["dtype"] == "float64" and r["epoch"] > 0]
    assert max(r["pair_max_rel"] for r in exact) < 1e-9
    assert min(r["control_max_rel"] for r in exact) > 1e-3
    finals = files.read_csv(out / "identity_final.csv")
    for row in (r for r in finals if r["dtype"] == "float64"):
        assert row["moving_variance_max_rel"] < 1e-9
        assert row["predictions_training_mode_max_abs"] < 1e-9
        assert row["predictions_inference_max_abs"] > 1e-6  # moving variance starts at 1
    assert (out / "identity.png").read_bytes().startswith(b"\x89PNG")
    report = (out / "REPORT.md").read_text()
    assert "## The epsilon identity, exactly (float64)" in report
    assert "Verdict: **exact**" in report
