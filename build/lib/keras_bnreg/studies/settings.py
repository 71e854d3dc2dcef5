"""What every study shares: the sweep's settings, and the record of what was asked for.

A results directory keeps `requested.json`: for each study, the settings of the last
command that ran it. The report selects the runs those settings ask for and leaves out
(and lists) every other run directory, so runs of different settings are never averaged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from keras_bnreg import files
from keras_bnreg.config import RunConfig

REQUESTED = "requested.json"


@dataclass(frozen=True)
class Settings:
    """What every study shares."""

    out: str = "results"  # results directory; runs go to <out>/runs, models to <out>/models
    data: str = "auto"  # as train.py --data
    epochs: int = 10  # epochs per run (the paper states none)
    seeds: int = 5  # seeds 0 .. seeds-1
    hidden: tuple[int, ...] = (300,)  # hidden widths (the paper's 300)

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


def infer_settings(out, runs) -> Settings | None:
    """Legacy only: the settings of a results directory written before `requested.json`,
    taken from its runs (the most common data, epochs and first width; seeds up to the
    largest seed found). None when no run is readable."""
    configs = [run.config for run in runs if not run.problem and run.config.get("hidden")]
    if not configs:
        return None

    def most_common(values):
        values = list(values)
        return max(set(values), key=values.count)

    return Settings(
        out=str(out),
        data=most_common(str(c.get("data")) for c in configs),
        epochs=int(most_common(int(c.get("epochs", 0)) for c in configs)),
        seeds=1 + max(int(c.get("seed", 0)) for c in configs),
        hidden=(int(most_common(int(c["hidden"][0]) for c in configs)),),
    )
