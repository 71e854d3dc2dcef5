"""`python reproduce.py all` end to end, this checkout against another one, interleaved.

    git worktree add /tmp/old <commit>
    python benchmarks/bench_reproduce_cli.py --other /tmp/old [--repeats 2] [-- reproduce.py flags]

Each repeat runs `python reproduce.py all --jobs 2 --data bundled` (or the flags given after
`--`) once in this checkout and once in the other (alternating which goes first), each in a
fresh process from its checkout's folder, as a person types it, into a fresh temporary
results directory. Both use this interpreter; a checkout's own `keras_bnreg` comes first on
`sys.path` (the script's folder). Prints per sweep its wall time, how many runs it completed
and the seconds per run; then medians and their ratios. The two checkouts may run different
numbers of runs (the study list grows), so the ratio is given both for the whole command and
per completed run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_train_cli import interleaved  # this folder is first on sys.path


def one_sweep(checkout: Path, out: Path, flags: list[str]) -> dict:
    command = [sys.executable, "reproduce.py", "all", *flags, "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"error: {checkout}: reproduce.py exited {done.returncode}\n{done.stderr[-2000:]}"
        )
    statuses = [
        json.loads(path.read_text()).get("status") for path in out.glob("runs/*/summary.json")
    ]
    completed = sum(status == "completed" for status in statuses)
    return {"wall": wall, "runs": len(statuses), "completed": completed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", required=True, type=Path, help="another checkout")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("flags", nargs="*", default=["--jobs", "2", "--data", "bundled"])
    args = parser.parse_args(argv)
    measured = interleaved(
        args.other,
        args.repeats,
        lambda checkout, out: one_sweep(checkout, out, args.flags),
        lambda result: (
            f"{result['wall']:.1f} s, {result['completed']}/{result['runs']} runs "
            f"completed, {result['wall'] / max(result['runs'], 1):.2f} s per run"
        ),
    )
    wall = {name: statistics.median(r["wall"] for r in runs) for name, runs in measured.items()}
    per_run = {
        name: statistics.median(r["wall"] / max(r["runs"], 1) for r in runs)
        for name, runs in measured.items()
    }
    print(
        f"median wall: this {wall['this']:.1f} s, other {wall['other']:.1f} s, "
        f"other / this = {wall['other'] / wall['this']:.2f}x; per run: this "
        f"{per_run['this']:.2f} s, other {per_run['other']:.2f} s, other / this = "
        f"{per_run['other'] / per_run['this']:.2f}x "
        f"(reproduce.py all {' '.join(args.flags)}, {args.repeats} repeats)"
    )


if __name__ == "__main__":
    main()
