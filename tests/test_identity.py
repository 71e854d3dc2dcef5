"""The epsilon identity in float64: amplitude a with epsilon e trains exactly like amplitude 1
with epsilon e / a^2 (the `dtype` and `record_kernels` settings, `KernelRecorder`)."""

from __future__ import annotations

import numpy as np
import pytest

from keras_bnreg import experiment
from keras_bnreg.config import ConfigError, RunConfig

AMPLITUDE, EPSILON = 2.0, 1e-3


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


def test_recorder_keeps_every_epoch_in_the_run_dtype(kernels):
    scaled = kernels["scaled"]
    assert list(scaled["epoch"]) == [0, 1, 2]
    assert scaled["kernel"].shape == (3, 784, 8) and scaled["kernel"].dtype == np.float64
    for name in ("bias", "gamma", "beta", "moving_mean", "moving_variance"):
        assert scaled[name].shape == (3, 8) and scaled[name].dtype == np.float64
    assert not np.array_equal(scaled["kernel"][0], scaled["kernel"][-1])  # it trained


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


def test_the_control_is_a_different_problem(kernels):
    gap = max_relative(kernels["scaled"]["kernel"][-1], kernels["control"]["kernel"][-1])
    assert gap > 1e-3


def test_dtype_setting_is_validated():
    with pytest.raises(ConfigError, match=r"^dtype must be one of float32, float64\. Received"):
        RunConfig(dtype="float16").validate()
