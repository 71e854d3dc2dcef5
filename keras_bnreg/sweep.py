"""Many runs, resumable: each run is `experiment.run` in a worker process.

A sweep is a list of RunConfigs. A run is skipped when its directory holds an intact run
(`manifest.json`, written last, still matches every file), a `summary.json` with status
"completed" and a `config.json` whose science settings (`config.ROLES`) equal the config's,
so a sweep stopped by Ctrl-C or a crash resumes where it stopped. Executors run the same
function, `run_config`, whatever schedules it: a local process pool (default) or Ray
(`keras_bnreg.ray_executor`, imported only when asked for).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits

from keras_bnreg import manifest
from keras_bnreg.config import RunConfig

EXECUTOR_NAMES = ("local", "ray")
LOCK_NAME = ".sweep.lock"


@dataclass(frozen=True)
class RunOutcome:
    name: str
    status: str  # completed | diverged | interrupted | failed | skipped
    run_dir: str
    seconds: float
    message: str = ""


def is_complete(config: RunConfig) -> bool:
    """True if `config`'s run directory holds a completed run of the same science settings
    (`RunConfig.science_differences`), every file of it intact (`manifest.json` written
    last by the run: sizes and sha256)."""
    run_dir = Path(config.out) / config.name
    if manifest.problem(run_dir) is not None:
        return False
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        saved = json.loads((run_dir / "config.json").read_text())
        return summary.get("status") == "completed" and not config.science_differences(saved)
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def run_config(config_dict: dict) -> RunOutcome:
    """Run one config (a dict, so any executor can ship it); never raises for a bad run."""
    start = time.perf_counter()
    config = RunConfig.from_dict(config_dict)
    try:
        from keras_bnreg import quiet

        quiet.tensorflow_start_up()  # a spawned worker may import TF first here: no start-up noise
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


class SweepLocked(OSError):
    """Another live sweep holds the results directory's lock (a one-line message)."""


@contextlib.contextmanager
def locked(directory):
    """Hold `<directory>/.sweep.lock` for a sweep: a second sweep into it is refused.

    An `fcntl.flock` held by this process: the kernel releases it when the process ends,
    however it ends, so a lock left by a killed sweep is taken over (with a notice). The
    file records the holder's pid and start time for the message.
    """
    import fcntl  # POSIX only: imported where the lock is taken

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise SweepLocked(
                f"another sweep ({holder}) is writing to {directory}: wait for it to finish "
                "or stop it, or use another --out"
            ) from None
        handle.seek(0)
        left = handle.read().strip()
        if left:
            print(f"taking over the lock of a sweep that ended ({left})", file=sys.stderr)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        yield path
        handle.seek(0)
        handle.truncate()  # a clean end leaves an empty (unlocked) file
    finally:
        handle.close()


def group_key(config_dict: dict) -> tuple:
    """Runs with equal keys can share a worker's compiled model (`RunConfig.compiled_shape`)."""
    return RunConfig.from_dict(config_dict).compiled_shape()


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

    Holds the results directory's lock (`locked`) while it runs. Ctrl-C: no new run starts,
    the running ones end as "interrupted", a summary line is printed and
    `KeyboardInterrupt` raised; a second Ctrl-C stops the workers at once. SIGTERM stops
    the workers at once and exits with 143.

    Args:
        configs: RunConfigs with distinct names under the same `out`.
        jobs: parallel runs for the local executor (default: the machine's cores).
        executor: "local" (worker processes) or "ray".
        address: Ray cluster address (None: start a local Ray on this machine).
        cpus_per_run: TensorFlow threads per run (and Ray CPUs per task).
        progress: one line per finished run and a progress bar with ETA (on stderr).

    Raises:
        SweepLocked: another live sweep writes to the same directory.
        ValueError: bad arguments, or a Ray address that does not answer.
    """
    configs = list(configs)
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError("sweep configs must have distinct run names")
    if executor not in EXECUTOR_NAMES:
        raise ValueError(
            f"executor must be one of {', '.join(EXECUTOR_NAMES)}. Received: {executor!r}"
        )
    if executor == "ray" and address:
        check_ray_address(address)
    if not configs:
        return []
    configs = [c if c.threads is not None else c.replace(threads=cpus_per_run) for c in configs]
    with locked(configs[0].out), _terminate_on_sigterm():
        outcomes = {}
        pending = []
        for config in configs:
            if is_complete(config):
                outcomes[config.name] = RunOutcome(
                    config.name, "skipped", str(Path(config.out) / config.name), 0.0
                )
            else:
                pending.append(config)
        skipped = len(configs) - len(pending)
        bar = _progress_bar(len(pending), description, progress, skipped=skipped)

        def report(outcome):
            outcomes[outcome.name] = outcome
            if bar is not None:
                bar.write(_line(outcome))
                bar.update(1)

        try:
            if executor == "ray":
                from keras_bnreg import ray_executor  # Ray only when asked for

                for outcome in ray_executor.run(
                    pending,
                    function=run_config,
                    failed=failed_outcome,
                    address=address,
                    cpus_per_run=cpus_per_run,
                ):
                    report(outcome)
            else:
                _run_local(pending, jobs or default_jobs(), report)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
                bar = None
            print(_stop_summary(outcomes, len(pending), skipped), file=sys.stderr)
            raise KeyboardInterrupt from None
        finally:
            if bar is not None:
                bar.close()
    return [outcomes[name] for name in names]


def _stop_summary(outcomes, pending, skipped) -> str:
    finished = [o for o in outcomes.values() if o.status != "skipped"]
    counts = {}
    for outcome in finished:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    parts.append(f"{pending - len(finished)} not started")
    if skipped:
        parts.append(f"{skipped} already complete before")
    return "stopped: " + ", ".join(parts)


@contextlib.contextmanager
def _terminate_on_sigterm():
    """SIGTERM in the main thread: SystemExit(143), so workers are killed and the lock freed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Raise ValueError (one line) unless a Ray head answers at `address` within `timeout`.

    `ray.init(address=...)` to a host that does not answer retries for minutes; a plain TCP
    connection to its `host:port` tells in seconds. "auto" and "local" are left to Ray.
    """
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address {address}: expected host:port (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if isinstance(error, TimeoutError) or isinstance(error, socket.timeout):
            reason = f"no answer within {timeout:g} s"
        raise ValueError(f"--address {address}: no Ray head reachable ({reason})") from None


def failed_outcome(config_dict, message) -> RunOutcome:
    """The outcome of a run that could not report its own (its worker died, Ray failed)."""
    config = RunConfig.from_dict(config_dict)
    return RunOutcome(config.name, "failed", str(Path(config.out) / config.name), 0.0, message)


def _lost(config_dict, exitcode) -> RunOutcome:
    return failed_outcome(
        config_dict, f"the worker process died (exit code {exitcode}; out of memory or killed?)"
    )


def _run_local(configs, jobs, on_result):
    """Run configs in this process (jobs=1) or in `jobs` worker processes (`workers`)."""
    if jobs == 1:
        for config in configs:
            outcome = run_config(config.to_dict())
            on_result(outcome)
            if outcome.status == "interrupted":  # Ctrl-C: no new run
                raise KeyboardInterrupt
        return
    from keras_bnreg import workers  # the pool, only when runs are left to do

    workers.run_all(
        [config.to_dict() for config in configs],
        min(jobs, len(configs)),
        run_config,
        key=group_key,
        on_lost=_lost,
        on_result=on_result,
    )


def _line(outcome: RunOutcome) -> str:
    text = f"{outcome.status:<11} {outcome.name} ({outcome.seconds:.1f} s)"
    return text + (f": {outcome.message}" if outcome.message else "")


def _progress_bar(total, description, enabled, skipped):
    if not enabled:
        return None
    from tqdm import tqdm  # only when a progress bar is shown

    if skipped:
        print(f"{skipped} run(s) already completed, skipped", file=sys.stderr)
    return tqdm(total=total, desc=description, unit="run", file=sys.stderr, dynamic_ncols=True)
