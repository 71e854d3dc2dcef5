"""Reproduce the paper's Tables I and II and Fig. 2, the ablations, and the report.

`python reproduce.py ...` in a checkout, `python -m keras_bnreg.reproduce ...` or
`bnreg-reproduce ...` wherever the package is installed:

    python reproduce.py table1 --seeds 5          # amplitude 2,3,4,5,6
    python reproduce.py table2 --seeds 5          # amplitude 1, SNR 100, 10, 1, 0.5
    python reproduce.py fig2                      # alpha across the 300 hidden nodes
    python reproduce.py ablations                 # what explains the numbers
    python reproduce.py all --jobs 2 --data auto --epochs 10 --out results/
    python reproduce.py report                    # rebuild every table and figure, no training

Each run is the same `experiment.run` that train.py calls, in its own directory under
<out>/runs; a rerun skips runs already completed with the same config, so a stopped sweep
resumes. Tables, figures and REPORT.md are rebuilt from those directories.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

# Nothing here imports Keras or TensorFlow: every other import of the package sits inside
# the function that needs it, after the arguments are parsed, so --help answers at once.
from keras_bnreg import extras
from keras_bnreg.cli import ArgumentParser, fail

# The commands, listed here so that `--help` and argument errors answer before the package
# (and with it TensorFlow) is imported. tests/test_reproduce.py checks that the studies
# among them are exactly `keras_bnreg.studies.STUDIES`, with the same descriptions.
STUDY_COMMANDS = {
    "table1": "Table I: amplitude 2..6",
    "table2": "Table II: SNR 100, 10, 1, 0.5 at amplitude 1",
    "fig2": "Fig. 2: per-node alpha of the hidden nodes",
    "ablations": "what explains the numbers: epsilon, optimizer, init, equivalence",
    "baseline": "the MLP without BN, explicit L2 over a grid, rate chosen on validation",
    "depth": "the amplitude sweep at 1, 2 and 4 hidden layers",
    "readings": "which reading of the paper's columns fits: weights, units, squares, x1e8",
    "identity": "the epsilon identity: amplitude a, eps e == amplitude 1, eps e/a^2 (float64)",
    "claims": "the untested claims: regularization, auto-tuning, Eq. 4, the captions",
    "cnn": "Table I's amplitude sweep on a small CNN (Conv2D+BN blocks)",
}
OTHER_COMMANDS = {
    "all": "table1, table2, fig2, ablations, readings, identity and claims, then the report",
    "fig1": "Fig. 1: L2 shrinkage on a 2-D quadratic and the alpha BN would set",
    "report": "rebuild every table, figure and REPORT.md from <out>/runs (no training)",
}
ALL = ("table1", "table2", "fig2", "ablations", "readings", "identity", "claims")
SEPARATE_SEEDS = ("ablations", "baseline", "depth")  # use --ablation-seeds
EXECUTOR_NAMES = ("local", "ray")  # keras_bnreg.sweep.EXECUTOR_NAMES (checked by a test)


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def settings_for(name, args):
    from keras_bnreg.studies import Settings

    seeds = args.seeds
    if name in SEPARATE_SEEDS and args.ablation_seeds is not None:
        seeds = args.ablation_seeds
    return Settings(
        out=args.out, data=args.data, epochs=args.epochs, seeds=seeds, hidden=tuple(args.hidden)
    )


def run_study(names, args) -> int:
    """Run the named studies' configs (shared runs once), record what was asked for, then
    rebuild the outputs."""
    from keras_bnreg.studies import STUDIES
    from keras_bnreg.studies.settings import (
        read_requests,
        record_request,
        settings_from_record,
    )
    from keras_bnreg.sweep import run_sweep

    record = read_requests(args.out)
    requested = {}
    for name in names:
        # A study that reads other studies' runs uses the settings they were last run with.
        for study in getattr(STUDIES[name], "USES", (name,)):
            if study not in requested and study != name and study in record:
                requested[study] = settings_from_record(args.out, record[study])
            requested.setdefault(study, settings_for(study, args))
    configs, seen = [], set()
    for name, settings in requested.items():
        for config in STUDIES[name].configs(settings):
            if config.name not in seen:
                seen.add(config.name)
                configs.append(config)
    record_request(args.out, requested)
    start = time.perf_counter()
    print(
        f"{' + '.join(names)}: {len(configs)} runs, up to {args.jobs} at a time "
        f"({args.executor}), results in {args.out}",
        file=sys.stderr,
    )
    try:
        outcomes = run_sweep(
            configs,
            jobs=args.jobs,
            executor=args.executor,
            address=args.address,
            cpus_per_run=args.cpus_per_run,
            description=" + ".join(names),
        )
    except KeyboardInterrupt:
        print(
            "interrupted: completed runs are kept; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    record_timing(args.out, "+".join(names), time.perf_counter() - start)
    failed = [o for o in outcomes if o.status == "failed"]
    diverged = [o for o in outcomes if o.status == "diverged"]
    print(
        f"done: {len(outcomes) - len(failed) - len(diverged)} completed, "
        f"{len(diverged)} diverged, {len(failed)} failed",
        file=sys.stderr,
    )
    for outcome in failed:
        print(f"failed: {outcome.name}: {outcome.message}", file=sys.stderr)
    return rebuild(args.out) or (1 if failed else 0)


def record_timing(out, name, seconds) -> None:
    from keras_bnreg import files

    path = Path(out) / "timings.json"
    try:
        timings = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        timings = {}
    timings[name] = seconds
    files.write_json(path, timings)


def rebuild(out) -> int:
    from keras_bnreg import report

    written = report.build_outputs(out)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def run_command(args) -> int:
    if args.study in STUDY_COMMANDS:
        return run_study([args.study], args)
    if args.study == "all":
        return run_study(list(ALL), args)
    if args.study == "fig1":
        from keras_bnreg.theory import plots as theory_plots

        theory_plots.plot_fig1(Path(args.out) / "fig1.png")
        print(f"wrote {Path(args.out) / 'fig1.png'}", file=sys.stderr)
        return 0
    return rebuild(args.out)


def argparser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "study",
        choices=[*STUDY_COMMANDS, *OTHER_COMMANDS],
        metavar="STUDY",
        help="one of: "
        + ", ".join(f"{k} ({v})" for k, v in {**STUDY_COMMANDS, **OTHER_COMMANDS}.items()),
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per setting (default: 5)")
    parser.add_argument(
        "--ablation-seeds",
        type=int,
        default=2,
        help="seeds per setting of the ablations, baseline and depth studies (default: 2)",
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default: 10)")
    parser.add_argument("--data", default="auto", help="as train.py --data (default: auto)")
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=[300],
        help="hidden widths (default: 300, the paper's)",
    )
    parser.add_argument("--out", default="results", help="results directory (default: results)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help=f"parallel runs, local executor (default: cores = {default_jobs()})",
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTOR_NAMES,
        default="local",
        help="local process pool or Ray (default: local)",
    )
    parser.add_argument(
        "--address", default=None, help="Ray cluster address (default: start a local Ray)"
    )
    parser.add_argument(
        "--cpus-per-run",
        type=int,
        default=1,
        help="TensorFlow threads per run, Ray CPUs per task (default: 1)",
    )
    return parser


def main(argv=None) -> int:
    args = argparser().parse_args(argv)
    for name in ("seeds", "ablation_seeds", "epochs", "jobs", "cpus_per_run"):
        value = getattr(args, name)
        if value is not None and value < 1:
            fail(f"--{name.replace('_', '-')} must be >= 1. Received: {value}")
    if any(width < 1 for width in args.hidden):
        fail(f"--hidden widths must be >= 1. Received: {args.hidden}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a directory")
    if args.study == "report" and not (out / "runs").is_dir():
        fail(f"no runs under {out / 'runs'}: run a study first (e.g. python reproduce.py table1)")
    if args.data not in ("auto", "tfds", "bundled") and not Path(args.data).exists():
        fail(
            f"--data {args.data}: no such file or directory (expected auto, tfds, bundled, a "
            "mnist.npz file or a directory of MNIST IDX files)"
        )
    try:
        extras.require(
            "reproduce.py", "tensorflow", "matplotlib", "tqdm", "threadpoolctl", "mlxtend"
        )
        if args.executor == "ray":
            extras.require("--executor ray", "ray")
    except extras.MissingExtra as error:
        fail(error)
    from keras_bnreg import quiet

    quiet.tensorflow_start_up()  # the studies import TensorFlow: without its start-up lines
    import tensorflow as tf

    # the report predicts with one saved model after another: no notes about retracing
    tf.get_logger().setLevel("ERROR")
    try:
        return run_command(args)
    except (OSError, ValueError) as error:
        fail(error)


if __name__ == "__main__":
    sys.exit(main())
