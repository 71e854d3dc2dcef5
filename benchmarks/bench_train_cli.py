"""`python train.py` alone, this checkout against another one, interleaved.

    git worktree add /tmp/old <commit>
    python benchmarks/bench_train_cli.py --other /tmp/old [--repeats 3] [-- train.py flags]

Each repeat runs `python train.py --amplitude 4 --data bundled` (or the flags given after
`--`) once in this checkout and once in the other (alternating which goes first), each in a
fresh process from its checkout's folder, as a person types it, into a temporary directory.
Both use this interpreter; a checkout's own `keras_bnreg` comes first on `sys.path` (the
script's folder). Prints the wall time of each run, the medians, their ratio and each run's
test accuracy and first-layer alpha (the same seed and path give the same numbers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(checkout: Path, out: Path, flags: list[str]) -> dict:
    out.mkdir(parents=True)
    command = [sys.executable, "train.py", *flags, "--out", str(out / "runs")]
    command += ["--models-dir", str(out / "models")]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {checkout}: train.py exited {done.returncode}\n{done.stderr}")
    (summary,) = (out / "runs").glob("*/summary.json")
    final = json.loads(summary.read_text())["final"]
    return {"wall": wall, "test_accuracy": final["test_accuracy"], "alpha": final["alpha_mean"]}


def interleaved(other: Path, repeats: int, run, describe) -> dict:
    """`run(checkout, out_dir)` in this checkout and `other`, `repeats` times, alternating
    which goes first, each into a fresh folder of one temporary directory; prints
    `describe(result)` as each ends. Returns {"this": [results], "other": [results]}."""
    checkouts = {"this": ROOT, "other": other.resolve()}
    measured = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        for repeat in range(repeats):
            order = list(checkouts) if repeat % 2 == 0 else list(checkouts)[::-1]
            for name in order:
                result = run(checkouts[name], Path(tmp) / f"{name}{repeat}")
                measured[name].append(result)
                print(f"{name} ({checkouts[name]}): {describe(result)}", flush=True)
    return measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", required=True, type=Path, help="another checkout")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("flags", nargs="*", default=["--amplitude", "4", "--data", "bundled"])
    args = parser.parse_args(argv)
    measured = interleaved(
        args.other,
        args.repeats,
        lambda checkout, out: one_run(checkout, out, args.flags),
        lambda result: (
            f"{result['wall']:.2f} s, test accuracy "
            f"{result['test_accuracy']:.4f}, alpha {result['alpha']:.3f}"
        ),
    )
    medians = {name: statistics.median(r["wall"] for r in runs) for name, runs in measured.items()}
    print(
        f"median wall: this {medians['this']:.2f} s, other {medians['other']:.2f} s; "
        f"this / other = {medians['this'] / medians['other']:.2f} "
        f"(train.py {' '.join(args.flags)}, {args.repeats} repeats)"
    )


if __name__ == "__main__":
    main()
