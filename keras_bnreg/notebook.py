"""What the notebooks call: find results, or run a small sweep when there are none.

Environment variables (the test suite sets them to run every notebook quickly):
`BNREG_RESULTS` (results directory, default `results`), `BNREG_NOTEBOOK_SMALL=1` (a tiny
setting: 1 epoch, 32 hidden nodes, 1 seed), `BNREG_NOTEBOOK_DATA` (data spec, default auto),
`BNREG_MODELS` (where notebook 04 looks for .keras files, default `saved_models`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from keras_bnreg import report, studies, sweep, tables

PREFIXES = {"table1": "table1_", "table2": "table2_", "fig2": "table1_"}


def results_dir() -> Path:
    return Path(os.environ.get("BNREG_RESULTS", "results"))


def small() -> bool:
    return os.environ.get("BNREG_NOTEBOOK_SMALL") == "1"


def settings() -> studies.Settings:
    """The setting a notebook runs when it finds no results: small, or a quick real one."""
    data = os.environ.get("BNREG_NOTEBOOK_DATA", "auto")
    if small():
        return studies.Settings(out=str(results_dir()), data=data, epochs=1, seeds=1, hidden=(32,))
    return studies.Settings(out=str(results_dir()), data=data, epochs=5, seeds=2)


def ensure_runs(study: str) -> list[tables.Run]:
    """The study's runs under the results directory; runs a small sweep if there are none,
    then rebuilds the tables and figures."""
    out = results_dir()
    runs = tables.read_runs(out / "runs", PREFIXES[study])
    if not runs:
        configs = studies.STUDIES[study][0](settings())
        print(f"no {study} results in {out}: running {len(configs)} small runs", file=sys.stderr)
        sweep.run_sweep(configs, jobs=1, progress=False)
        runs = tables.read_runs(out / "runs", PREFIXES[study])
    report.build_outputs(out)
    return runs


def table_rows(study: str) -> list[dict]:
    """The study's table as built by `reproduce.py` (rows of table1.csv / table2.csv)."""
    from keras_bnreg import files

    return files.read_csv(results_dir() / f"{study}.csv")


def saved_model_path() -> Path:
    """A .keras file from `saved_models/`, or a tiny model trained now when there is none."""
    models = Path(os.environ.get("BNREG_MODELS", "saved_models"))
    found = sorted(models.glob("*.keras"))
    if found:
        return found[0]
    from keras_bnreg import experiment
    from keras_bnreg.config import RunConfig

    config = RunConfig(
        amplitude=4.0,
        epochs=1 if small() else 5,
        hidden=(32,) if small() else (300,),
        data=os.environ.get("BNREG_NOTEBOOK_DATA", "auto"),
        out=str(results_dir() / "runs"),
        models_dir=str(models),
        run_name="notebook_amp4",
    )
    print(f"no model in {models}: training {config.name}", file=sys.stderr)
    return experiment.run(config, verbose=0).model_path
