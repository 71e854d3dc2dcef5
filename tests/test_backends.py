"""The monitor's correctness tests on the other Keras 3 backends, each in a fresh process
(the backend is fixed when Keras is imported): JAX always (its CPU wheel is part of the dev
environment; missing, these tests fail rather than skip), PyTorch where it is installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from helpers import ROOT

# The monitor's correctness tests, as run under TensorFlow.
SUITE = [
    "tests/test_monitor.py",
    "tests/test_pairs.py",
    "tests/test_inputs.py",
    "tests/test_effective_step.py",
    "tests/test_precision.py",
    "tests/test_measures.py",
]
# A quick subset for `make test`: every column against NumPy after training, and a model of
# the package's layers saved and loaded (the whole suite is a slow test).
SMOKE = [
    "tests/test_monitor.py::test_every_column_equals_direct_numpy",
    "tests/test_pairs.py::test_a_loaded_model_measures_like_the_built_one[input scaling]",
]


def under(backend, tests, workers=1):
    """Run pytest on `tests` in a process whose Keras runs `backend` (checked there)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    environment["KERAS_BACKEND"] = backend
    arguments = ["-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    arguments += ["-n", str(workers)] if workers > 1 else []
    script = (
        "import sys, keras, pytest\n"
        f"assert keras.backend.backend() == {backend!r}, keras.backend.backend()\n"
        f"sys.exit(pytest.main({arguments!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=1500,
    )


def require(module, install):
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed in this environment: {install}")


def assert_passed(completed, skipped_at_most=0):
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    skipped = int(summary.split(" skipped")[0].split()[-1]) if " skipped" in summary else 0
    assert skipped <= skipped_at_most, summary


def test_monitor_smoke_under_jax():
    require("jax", "pip install 'jax[cpu]==0.10.2' (the dev environment's pin)")
    assert_passed(under("jax", SMOKE))


@pytest.mark.slow
def test_monitor_suite_under_jax():
    require("jax", "pip install 'jax[cpu]==0.10.2' (the dev environment's pin)")
    assert_passed(under("jax", SUITE, workers=2), skipped_at_most=1)  # the torch DataLoader


@pytest.mark.slow
def test_monitor_suite_under_torch():
    pytest.importorskip("torch", reason="PyTorch is not installed (README: what was verified)")
    assert_passed(under("torch", SUITE, workers=2))
