"""Atomic file writing: a temp file in the same directory, then `os.replace`.

A reader (or a crash) never sees a half-written CSV, JSON or model.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temp path beside `path`; on success rename it onto `path`, else remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(handle)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, data) -> None:
    write_text(path, json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


def write_csv(path, rows, columns) -> None:
    """Write dict rows under `columns` (missing keys: empty cell; floats repr-exact).

    Raises:
        ValueError: a row holds a key that is not in `columns` (nothing is dropped silently).
    """
    columns = list(columns)
    unknown = sorted({key for row in rows for key in row} - set(columns))
    if unknown:
        raise ValueError(f"{path}: rows hold columns not in the header. Received: {unknown}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    write_text(path, buffer.getvalue())


def read_csv(path) -> list[dict]:
    """Rows of a CSV as dicts of floats where a cell parses as a number, else strings."""
    with open(path, newline="") as handle:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _cell(value):
    if isinstance(value, float):
        return repr(value)
    return value


def _parse(text):
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
