"""What every command line of the project shares: one-line errors, exit codes, and flags
generated from a config dataclass. Imports neither Keras nor TensorFlow.

Exit codes: 0 done, 2 bad input, 3 the loss diverged, 4 the run failed unexpectedly
(traceback in the run directory's `error.log`), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_FAILED = 4
EXIT_INTERRUPTED = 130

# argparse takes "-1e-3" for an option (its own pattern knows only -1 and -1.5): a value
# like `--snr -1e-3` then fails with a misleading "expected one argument".
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.I)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line `error: ...` and exit code 2, and negative
    numbers in scientific notation are read as values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message):
        fail(f"{message} (see {self.prog} --help)")


def fail(message: str, code: int = EXIT_BAD_INPUT):
    """Print `error: <message>` on one line to stderr and exit with `code`."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def add_config_flags(parser: argparse.ArgumentParser, config_class, only=None) -> None:
    """One flag per field of `config_class` (made with `config.setting`), or per field named
    in `only`: help text, default, type, nargs and choices all come from the field."""
    defaults = config_class()
    for item in dataclasses.fields(config_class):
        if (only is not None and item.name not in only) or item.metadata.get("flag") is False:
            continue
        meta = item.metadata
        default = getattr(defaults, item.name)
        flag = meta["flag"] or "--" + item.name.replace("_", "-")
        if isinstance(default, bool):
            action = "store_false" if default else "store_true"
            parser.add_argument(flag, dest=item.name, action=action, help=meta["help"])
            continue
        shown = "none" if default is None else " ".join(map(str, _as_list(default)))
        parser.add_argument(
            flag,
            dest=item.name,
            type=meta["type"],
            nargs=meta["nargs"],
            choices=meta["choices"],
            metavar=meta["metavar"],
            default=list(default) if isinstance(default, tuple) else default,
            help=f"{meta['help']} (default: {shown})",
        )


def config_from_args(config_class, args, **extra):
    """The dataclass from parsed flags (lists become tuples), plus `extra` fields."""
    values = {}
    for item in dataclasses.fields(config_class):
        if hasattr(args, item.name) and item.metadata.get("flag") is not False:
            value = getattr(args, item.name)
            values[item.name] = tuple(value) if isinstance(value, list) else value
    return config_class(**values, **extra)


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]
