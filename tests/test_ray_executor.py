"""Sweeps on Ray: same run function, same results as the process pool, retries, no Ray on import."""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, probe, without_timing

from keras_bnreg import files, sweep
from keras_bnreg.studies import Settings, table1

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_session():
    import ray

    from keras_bnreg import ray_executor

    ray_executor.init(num_cpus=2)
    yield ray
    ray.shutdown()


def tiny_configs(out, data, amplitudes=(2.0, 4.0)):
    settings = Settings(out=str(out), data=str(data), epochs=1, seeds=1, hidden=(8,))
    return [c for c in table1.configs(settings) if c.amplitude in amplitudes]


def test_ray_gives_the_same_results_as_the_process_pool(ray_session, tmp_path, small_npz):
    # jobs=2: spawned workers apply threads=1 as Ray's workers do (in-process runs cannot,
    # once TensorFlow has started, and a different thread count changes float rounding).
    local = sweep.run_sweep(tiny_configs(tmp_path / "local", small_npz), jobs=2, progress=False)
    remote = sweep.run_sweep(
        tiny_configs(tmp_path / "ray", small_npz), executor="ray", progress=False
    )
    assert [o.status for o in local] == [o.status for o in remote] == ["completed"] * 2
    for outcome in local:
        for name in ("history.csv", "nodes.csv", "nodes_output.csv"):
            ours = files.read_csv(tmp_path / "local" / "runs" / outcome.name / name)
            theirs = files.read_csv(tmp_path / "ray" / "runs" / outcome.name / name)
            assert without_timing(ours) == without_timing(theirs), (outcome.name, name)
    again = sweep.run_sweep(
        tiny_configs(tmp_path / "ray", small_npz), executor="ray", progress=False
    )
    assert {o.status for o in again} == {"skipped"}


def test_a_dying_worker_is_retried_and_a_failing_run_reported(ray_session, tmp_path, small_npz):
    from keras_bnreg import ray_executor

    marker = tmp_path / "crashed-once"

    def crash_first_time(config_dict):
        import os

        if not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies mid-run
        return sweep.run_config(config_dict)

    configs = tiny_configs(tmp_path, small_npz, amplitudes=(2.0,))
    outcomes = list(
        ray_executor.run(
            configs, function=crash_first_time, failed=sweep.failed_outcome, max_retries=2
        )
    )
    assert marker.exists() and [o.status for o in outcomes] == ["completed"]
    assert sweep.is_complete(configs[0])

    def always_crash(config_dict):
        import os

        os._exit(1)

    other = tiny_configs(tmp_path / "other", small_npz, amplitudes=(4.0,))
    outcomes = list(
        ray_executor.run(other, function=always_crash, failed=sweep.failed_outcome, max_retries=1)
    )
    assert [o.status for o in outcomes] == ["failed"] and outcomes[0].message
    run_dir = tmp_path / "other" / "runs" / other[0].name
    assert not (run_dir / "summary.json").exists()


def test_importing_the_package_and_train_py_does_not_import_ray():
    result = probe("no_ray", cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) is False, "ray was imported"
