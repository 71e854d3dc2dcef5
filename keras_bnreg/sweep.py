"""Many runs, resumable: each run is `experiment.run` in a worker process.

A sweep is a list of RunConfigs. A run whose directory already holds a `summary.json`
with status "completed" and a `config.json` equal to the config (ignoring settings that do
not change the science: threads, output paths, TensorBoard) is skipped, so a sweep stopped
by Ctrl-C or a crash resumes where it stopped. Executors run the same function,
`run_config`, whatever schedules it: a local process pool (default) or Ray
(`keras_bnreg.ray_executor`, imported only when asked for).
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from threadpoolctl import threadpool_limits

from keras_bnreg.config import RunConfig

# Settings that decide where and how fast a run goes, not what it computes.
NOT_SCIENTIFIC = ("threads", "out", "models_dir", "tensorboard", "extra", "study", "role")
EXECUTOR_NAMES = ("local", "ray")


@dataclass(frozen=True)
class RunOutcome:
    name: str
    status: str  # completed | diverged | interrupted | failed | skipped
    run_dir: str
    seconds: float
    message: str = ""


def scientific(config_dict: dict) -> dict:
    return {k: v for k, v in config_dict.items() if k not in NOT_SCIENTIFIC}


def is_complete(config: RunConfig) -> bool:
    """True if `config`'s run directory holds a completed run of the same config."""
    run_dir = Path(config.out) / config.name
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return False
    # Through RunConfig: settings added since that run was made take their defaults.
    saved = json.loads(json.dumps(RunConfig.from_dict(saved).to_dict()))
    return summary.get("status") == "completed" and scientific(saved) == scientific(
        json.loads(json.dumps(config.to_dict()))
    )


def run_config(config_dict: dict) -> RunOutcome:
    """Run one config (a dict, so any executor can ship it); never raises for a bad run."""
    start = time.perf_counter()
    config = RunConfig.from_dict(config_dict)
    try:
        import tensorflow as tf

        from keras_bnreg import experiment

        tf.get_logger().setLevel("ERROR")  # one process trains many models: no retrace warnings
        # NumPy's BLAS threads change float summation order: pin them to the run's threads,
        # so every executor (process pool, Ray, which sets OMP_NUM_THREADS) gives equal numbers.
        with threadpool_limits(limits=config.threads):
            result = experiment.run(config, verbose=0, notify=lambda message: None)
        status, message = result.status, ""
    except Exception as error:  # a failed run is reported, the sweep goes on
        status, message = "failed", f"{type(error).__name__}: {error}"
    return RunOutcome(
        config.name,
        status,
        str(Path(config.out) / config.name),
        time.perf_counter() - start,
        message,
    )


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run_sweep(
    configs,
    *,
    jobs=None,
    executor="local",
    address=None,
    cpus_per_run=1,
    progress=True,
    description="runs",
) -> list[RunOutcome]:
    """Run every config not already completed; return one outcome per config, in order.

    Args:
        configs: RunConfigs with distinct names under the same `out`.
        jobs: parallel runs for the local executor (default: the machine's cores).
        executor: "local" (a process pool) or "ray".
        address: Ray cluster address (None: start a local Ray on this machine).
        cpus_per_run: TensorFlow threads per run (and Ray CPUs per task).
        progress: one line per finished run and a progress bar with ETA (on stderr).
    """
    configs = list(configs)
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError("sweep configs must have distinct run names")
    if executor not in EXECUTOR_NAMES:
        raise ValueError(
            f"executor must be one of {', '.join(EXECUTOR_NAMES)}. Received: {executor!r}"
        )
    configs = [c if c.threads is not None else c.replace(threads=cpus_per_run) for c in configs]
    outcomes = {}
    pending = []
    for config in configs:
        if is_complete(config):
            outcomes[config.name] = RunOutcome(
                config.name, "skipped", str(Path(config.out) / config.name), 0.0
            )
        else:
            pending.append(config)
    bar = _progress_bar(len(pending), description, progress, skipped=len(configs) - len(pending))
    try:
        if executor == "ray":
            from keras_bnreg import ray_executor

            finished = ray_executor.run(pending, address=address, cpus_per_run=cpus_per_run)
        else:
            finished = _run_local(pending, jobs or default_jobs())
        for outcome in finished:
            outcomes[outcome.name] = outcome
            if bar is not None:
                bar.write(_line(outcome))
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return [outcomes[name] for name in names]


def _run_local(configs, jobs):
    """Yield outcomes as runs finish, one spawned process per job (TF and fork do not mix)."""
    if not configs:
        return
    if jobs == 1:
        for config in configs:
            yield run_config(config.to_dict())
        return
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(configs)), mp_context=get_context("spawn")
    ) as pool:
        futures = [pool.submit(run_config, config.to_dict()) for config in configs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            raise


def _line(outcome: RunOutcome) -> str:
    text = f"{outcome.status:<11} {outcome.name} ({outcome.seconds:.1f} s)"
    return text + (f": {outcome.message}" if outcome.message else "")


def _progress_bar(total, description, enabled, skipped):
    if not enabled:
        return None
    from tqdm import tqdm

    if skipped:
        print(f"{skipped} run(s) already completed, skipped", file=sys.stderr)
    return tqdm(total=total, desc=description, unit="run", file=sys.stderr, dynamic_ncols=True)
