"""Reproduce the paper's Tables I and II and Fig. 2, the ablations, and the report.

`python reproduce.py ...` in a checkout, `python -m keras_bnreg.reproduce ...` or
`bnreg-reproduce ...` wherever the package is installed:

    python reproduce.py table1 --seeds 5          # amplitude 2,3,4,5,6
    python reproduce.py table2 --seeds 5          # amplitude 1, SNR 100, 10, 1, 0.5
    python reproduce.py fig2                      # alpha across the 300 hidden nodes
    python reproduce.py ablations                 # what explains the numbers
    python reproduce.py all --jobs 2 --data auto --epochs 10 --out results/
    python reproduce.py report                    # rebuild every table and figure, no training
    python reproduce.py all --plan                # what `all` would run; nothing trained

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

# Nothing here imports Keras, TensorFlow or matplotlib (nor do the study modules when
# imported): every other import of the package sits inside the function that needs it,
# after the arguments are parsed, so --help answers at once.
from keras_bnreg import extras
from keras_bnreg.cli import ArgumentParser, add_config_flags, fail
from keras_bnreg.config import RunConfig
from keras_bnreg.studies import SEED_FLAGS, Settings, registry

OTHER_COMMANDS = {
    "fig1": "Fig. 1: L2 shrinkage on a 2-D quadratic and the alpha BN would set",
    "report": "rebuild every table, figure and REPORT.md from <out>/runs (no training)",
}
EXECUTOR_NAMES = ("local", "ray")  # keras_bnreg.sweep.EXECUTOR_NAMES (checked by a test)


def in_all() -> list[str]:
    """The studies `all` runs (their `IN_ALL`), in the registry's order."""
    return [name for name, study in registry().items() if study.in_all]


def commands() -> dict[str, str]:
    """Command -> description: every registered study, `all`, and the other commands."""
    studies = {name: study.description for name, study in registry().items()}
    return {**studies, "all": f"{_listed(in_all())}, then the report", **OTHER_COMMANDS}


def _listed(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def plan_for(names, args):
    """`studies.plan.plan` with this command's flags and the results directory's record."""
    from keras_bnreg.studies import plan
    from keras_bnreg.studies.settings import read_requests

    base = Settings(out=args.out, data=args.data, epochs=args.epochs, hidden=tuple(args.hidden))
    counts = {flag: getattr(args, flag) for flag in SEED_FLAGS}
    return plan.plan(names, base, counts, read_requests(args.out))


def print_plan(names, args) -> int:
    """--plan: what `run_study` would run, on stdout; nothing trained or written."""
    from keras_bnreg.sweep import is_complete

    planned = plan_for(names, args)
    for name, reads in planned.reads.items():
        print(f"{name}: reads {len(reads)} runs")
    done = sum(is_complete(config) for config in planned.configs)
    print(f"{len(planned.configs)} runs, {done} already completed, results in {args.out}:")
    for config in planned.configs:
        print(f"  {config.name} ({config.study})")
    return 0


def run_study(names, args) -> int:
    """Run the named studies' runs (shared runs once), record what was asked for, then
    rebuild the outputs."""
    from keras_bnreg.studies.settings import record_request
    from keras_bnreg.sweep import run_sweep

    planned = plan_for(names, args)
    configs = planned.configs
    record_request(args.out, planned.settings)
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
    if args.study in registry():
        return run_study([args.study], args)
    if args.study == "all":
        return run_study(in_all(), args)
    if args.study == "fig1":
        from keras_bnreg.theory import plots as theory_plots

        theory_plots.plot_fig1(Path(args.out) / "fig1.png")
        print(f"wrote {Path(args.out) / 'fig1.png'}", file=sys.stderr)
        return 0
    return rebuild(args.out)


def argparser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    listed = commands()
    parser.add_argument(
        "study",
        choices=list(listed),
        metavar="STUDY",
        help="one of: " + ", ".join(f"{k} ({v})" for k, v in listed.items()),
    )
    for flag, default in SEED_FLAGS.items():
        takers = [name for name, study in registry().items() if study.seeds == flag]
        parser.add_argument(
            "--" + flag.replace("_", "-"),
            type=int,
            default=default,
            help=f"seeds per setting of {_listed(takers)} (default: {default})",
        )
    add_config_flags(parser, RunConfig, only=("data", "epochs", "hidden"))
    parser.add_argument(
        "--out", default=Settings.out, help=f"results directory (default: {Settings.out})"
    )
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
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the runs the command would make (and how many are already completed), "
        "then stop: nothing trained, nothing written",
    )
    return parser


def main(argv=None) -> int:
    args = argparser().parse_args(argv)
    for name in (*SEED_FLAGS, "epochs", "jobs", "cpus_per_run"):
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
    if args.plan:
        if args.study in OTHER_COMMANDS:
            fail(f"--plan goes with a study or all, not {args.study}")
        return print_plan(in_all() if args.study == "all" else [args.study], args)
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
