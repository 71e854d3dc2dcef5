"""Run directories read back, and the selection of the runs a study's settings ask for.

A run directory is the train.py contract: config.json, summary.json, history.csv,
nodes.csv (first hidden layer) and nodes_<layer>.csv. A run records its study and role in
config.json, and its measured layers in summary.json; nothing is read from a run's name. A
directory that lacks them was not written by this version: it comes back with `problem`
set or without a study, and the report lists it under "Left out" with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_bnreg import files
from keras_bnreg.config import RunConfig

NO_STUDY = "its config.json names no study (not a run of this version's studies)"


def primary_layer(summary: dict) -> str:
    """The name of the layer whose table is `nodes.csv`: the first of the summary's
    `layers` (`pairs.primary` when the run was made).

    Raises:
        ValueError: the summary lists no measured layers.
    """
    layers = summary.get("layers")
    if not layers:
        raise ValueError("summary.json lists no measured layers")
    return layers[0]


@dataclass(frozen=True)
class Run:
    """One run directory, read back. `problem` says why it cannot be used (None: readable)."""

    name: str
    config: dict  # config.json read through RunConfig: every setting, JSON values
    summary: dict
    nodes: dict  # column -> per-node array (first hidden layer); empty if not completed
    layers: dict = field(default_factory=dict)  # layer name -> its node table (every layer)
    study: str | None = None
    role: dict = field(default_factory=dict)
    problem: str | None = None

    @property
    def status(self) -> str:
        return "unreadable" if self.problem else str(self.summary.get("status", "unknown"))

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def seed(self) -> int:
        return int(self.config["seed"])


def read_run(run_dir) -> Run:
    """Read one run directory; a damaged one comes back with `problem` set, never raises."""
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError) as error:
        return Run(run_dir.name, {}, {}, {}, problem=f"unreadable: {error}")
    if not isinstance(config, dict) or not isinstance(summary, dict):
        return Run(run_dir.name, {}, {}, {}, problem="config.json or summary.json is not an object")
    try:  # every setting present, a setting added since the run was made at its default
        config = json.loads(json.dumps(RunConfig.from_dict(config).to_dict()))
    except (TypeError, ValueError, AttributeError) as error:
        return Run(
            run_dir.name, {}, {}, {}, problem=f"config.json does not describe a run ({error})"
        )
    study, role = config["study"], config["role"]
    run = Run(run_dir.name, config, summary, {}, study=study, role=role)
    if summary.get("status") != "completed":
        return run
    layers, problem, primary = {}, None, None
    try:
        primary = primary_layer(summary)
        layers[primary] = _node_table(run_dir / "nodes.csv", _width(config, 0))
        for path in sorted(run_dir.glob("nodes_*.csv")):
            layers[path.stem.removeprefix("nodes_")] = _node_table(path, None)
    except (OSError, ValueError, KeyError, IndexError) as error:
        problem = f"node table unreadable ({error})"
    return Run(run.name, config, summary, layers.get(primary, {}), layers, study, role, problem)


def _width(config, index):
    hidden = config["hidden"]
    return int(hidden[index]) if len(hidden) > index else None


def _node_table(path, expected_rows) -> dict:
    rows = files.read_csv(path)
    if not rows:
        raise ValueError(f"{path.name} has no rows")
    if expected_rows is not None and len(rows) != expected_rows:
        raise ValueError(f"{path.name} has {len(rows)} of {expected_rows} nodes")
    return {k: np.array([row[k] for row in rows], dtype=float) for k in rows[0]}


def read_runs(runs_dir) -> list[Run]:
    """Every run directory under `runs_dir` with a summary.json (runs still in progress or
    killed before writing one are not runs yet)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [
        read_run(d)
        for d in sorted(runs_dir.iterdir())
        if d.is_dir() and (d / "summary.json").is_file()
    ]


def select(runs, configs) -> tuple[list[Run], dict]:
    """The runs that `configs` (a study's configs) ask for, and why others were not used.

    A run is used when its name, study and every scientific setting equal those of one of
    `configs` and it is readable; diverged runs are used (they are counted, never averaged).

    Returns:
        `(used, left_out)`: the runs, and run name -> reason for runs of the same names or
        study that were not used.
    """
    by_name = {run.name: run for run in runs}
    used, left_out = [], {}
    wanted = {config.name for config in configs}
    for config in configs:
        run = by_name.get(config.name)
        if run is None:
            continue
        if run.problem:
            left_out[run.name] = run.problem
            continue
        if run.study is None:
            left_out[run.name] = NO_STUDY
            continue
        try:
            differ = config.science_differences(run.config)
        except (TypeError, ValueError, AttributeError) as error:
            left_out[run.name] = f"config.json does not describe a run ({error})"
            continue
        if differ or run.study != config.study:
            shown = ", ".join(
                f"{key} {have!r} (asked {want!r})" for key, (have, want) in list(differ.items())[:3]
            )
            left_out[run.name] = f"settings differ from the last {config.study} command: " + (
                shown or f"study {run.study!r}"
            )
            continue
        used.append(run)
    study_names = {config.study for config in configs}
    for run in runs:
        if run.study in study_names and run.name not in wanted:
            left_out[run.name] = f"not asked for by the last {run.study} command"
    return used, left_out
