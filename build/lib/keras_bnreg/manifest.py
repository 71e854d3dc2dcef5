"""A run directory's manifest: the size and sha256 of every file the run wrote.

`experiment.run` writes `manifest.json` last, after `summary.json`; a run is complete only
when its manifest is present and every file it lists still has the size and sha256 it
records (`problem` returns why not). A run stopped or killed before the manifest, a file
cut short, edited or deleted afterwards, all read as "not complete", so a resumed sweep
reruns the run instead of averaging a damaged table in.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from keras_bnreg import files

NAME = "manifest.json"
# Files every completed run has (nodes_<layer>.csv come with deeper layers).
REQUIRED = ("config.json", "history.csv", "nodes.csv", "summary.json")


def sha256(path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write(run_dir) -> Path:
    """Write `<run_dir>/manifest.json` listing every other regular file in `run_dir`."""
    run_dir = Path(run_dir)
    entries = {
        path.name: {"bytes": path.stat().st_size, "sha256": sha256(path)}
        for path in sorted(run_dir.iterdir())
        if path.is_file() and path.name != NAME and not path.name.startswith(".")
    }
    files.write_json(run_dir / NAME, {"files": entries})
    return run_dir / NAME


def problem(run_dir) -> str | None:
    """None if `run_dir`'s manifest lists the required files and all still match it;
    otherwise one line saying what is wrong."""
    run_dir = Path(run_dir)
    try:
        entries = json.loads((run_dir / NAME).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {NAME}"
    if not isinstance(entries, dict):
        return f"{NAME} lists no files"
    missing = [name for name in REQUIRED if name not in entries]
    if missing:
        return f"{NAME} does not list {', '.join(missing)}"
    for name, entry in entries.items():
        path = run_dir / name
        try:
            if path.stat().st_size != entry["bytes"] or sha256(path) != entry["sha256"]:
                return f"{name} changed since the run wrote it"
        except OSError:
            return f"{name} is missing"
        except (KeyError, TypeError):
            return f"{NAME} entry for {name} is damaged"
    return None
