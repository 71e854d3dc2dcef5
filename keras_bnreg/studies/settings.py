"""What every study shares: the sweep's settings, and the record of what was asked for.

A results directory keeps `requested.json`: for each study, the settings of the last
command that ran it. The report selects the runs those settings ask for and leaves out
(and lists) every other run directory, so runs of different settings are never averaged.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from keras_bnreg import files
from keras_bnreg.config import RunConfig

REQUESTED = "requested.json"
# The seed flags of reproduce.py (`--seeds`, `--ablation-seeds`) and their defaults; a
# study's `SEEDS` names the one it takes.
SEED_FLAGS = {"seeds": 5, "ablation_seeds": 2}


def _run_default(name):
    """RunConfig's default of setting `name`: the one place defaults are written."""
    return next(item.default for item in dataclasses.fields(RunConfig) if item.name == name)


@dataclass(frozen=True)
class Settings:
    """What every study shares."""

    out: str = "results"  # results directory; runs go to <out>/runs, models to <out>/models
    data: str = _run_default("data")  # as train.py --data
    epochs: int = _run_default("epochs")  # epochs per run (the paper states none)
    seeds: int = SEED_FLAGS["seeds"]  # seeds 0 .. seeds-1
    hidden: tuple[int, ...] = _run_default("hidden")  # hidden widths (the paper's 300)

    @property
    def runs_dir(self) -> Path:
        return Path(self.out) / "runs"

    @property
    def models_dir(self) -> Path:
        return Path(self.out) / "models"

    def config(
        self, name: str, study: str, role: dict | None = None, save_model: bool = False, **changes
    ) -> RunConfig:
        """The RunConfig of run `name` of `study`: these settings, then `changes`."""
        shared = {
            "data": self.data,
            "epochs": self.epochs,
            "hidden": self.hidden,
            "out": str(self.runs_dir),
            "models_dir": str(self.models_dir),
        }
        return RunConfig(
            **{**shared, **changes},
            save_model=save_model,
            run_name=name,
            study=study,
            role=dict(role or {}),
        )

    def to_dict(self) -> dict:
        values = asdict(self)
        values["hidden"] = list(self.hidden)
        values.pop("out")  # the directory the record sits in
        return values


def record_request(out, studies: dict) -> None:
    """Record in `<out>/requested.json` the settings each named study was last run with.

    Args:
        out: the results directory.
        studies: study name -> Settings.
    """
    path = Path(out) / REQUESTED
    record = read_requests(out)
    record.update({name: settings.to_dict() for name, settings in studies.items()})
    files.write_json(path, record)


def read_requests(out) -> dict:
    """Study name -> recorded settings (a dict); empty for a directory that has no record."""
    path = Path(out) / REQUESTED
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def settings_from_record(out, values: dict) -> Settings:
    return Settings(
        out=str(out),
        data=str(values["data"]),
        epochs=int(values["epochs"]),
        seeds=int(values["seeds"]),
        hidden=tuple(int(width) for width in values["hidden"]),
    )
