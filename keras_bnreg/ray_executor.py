"""Run a sweep's configs as Ray tasks: the same `sweep.run_config`, scheduled by Ray.

Imported only when `--executor ray` is asked for; importing keras_bnreg never imports Ray.
Like `workers` for the local pool, it knows nothing of the sweep: `sweep.run_sweep` hands it
the function each task runs and the outcome of a task that fails.

- No address: `ray.init()` starts a local Ray on this machine (the embedded default).
- `address`: joins an existing cluster (`ray start --head` / `ray start --address=...`).
  Every node needs this project's requirements installed, and the results directory must be
  on storage all nodes share (runs write their directories themselves); the package is
  shipped to the workers with Ray's `py_modules`.

A task whose worker dies is retried (`max_retries`); a run that still fails comes back as
the outcome `failed` makes of the error, and the sweep goes on. Runs write their
files atomically, so a killed worker leaves no half-written file behind.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _absolute(config):
    """Results paths as absolute paths, so every worker writes where the driver reads."""
    return config.replace(
        out=str(Path(config.out).resolve()), models_dir=str(Path(config.models_dir).resolve())
    )


def init(address=None, num_cpus=None):
    """Start or join Ray unless it is already running; returns True if this call started it."""
    import ray  # never imported with the package (README: Ray only when asked for)

    if ray.is_initialized():
        return False
    env_vars = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(PACKAGE_DIR.parent)}
    if address:
        ray.init(
            address=address,
            log_to_driver=False,
            runtime_env={"py_modules": [str(PACKAGE_DIR)], "env_vars": env_vars},
        )
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=100 * 1024**2,
            runtime_env={"env_vars": env_vars},
        )
    return True


def run(configs, *, function, failed, address=None, cpus_per_run=1, max_retries=2):
    """Yield `function(config dict)` per config as its Ray task finishes.

    Args:
        configs: RunConfigs to run.
        function: what each task runs (the sweep's `run_config`).
        failed: `failed(config dict, message)` -> the outcome of a task that raised or whose
            worker died more often than retried.
        address: a Ray cluster address; None starts a local Ray.
        cpus_per_run: CPUs Ray reserves per task (and TensorFlow threads per run).
        max_retries: retries of a task whose worker process died.
    """
    configs = [_absolute(config) for config in configs]
    if not configs:
        return
    import ray  # never imported with the package (README: Ray only when asked for)

    started = init(address)
    try:
        task = ray.remote(num_cpus=cpus_per_run, max_retries=max_retries)(function)
        pending = {task.remote(config.to_dict()): config for config in configs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            config = pending.pop(done[0])
            try:
                yield ray.get(done[0])
            except Exception as error:  # the worker died more often than retried, or raised
                message = str(error).strip().splitlines()[-1] if str(error).strip() else ""
                yield failed(config.to_dict(), f"{type(error).__name__}: {message}"[:300])
    finally:
        if started:
            ray.shutdown()
