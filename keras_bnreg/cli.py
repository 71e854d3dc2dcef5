"""What every command line of the project shares: one-line errors and exit codes."""

from __future__ import annotations

import argparse
import sys

EXIT_BAD_INPUT = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line `error: ...` and exit code 2."""

    def error(self, message):
        fail(f"{message} (see {self.prog} --help)")


def fail(message: str, code: int = EXIT_BAD_INPUT):
    """Print `error: <message>` on one line to stderr and exit with `code`."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)
