"""What the notebooks call: find the repository's results and models, or make small ones.

A notebook's first cell calls `find_root()`: the repository root is the first folder,
from the kernel's working directory upwards (Jupyter starts a kernel in the notebook's own
folder, `notebooks/`), that holds `reproduce.py` and `keras_bnreg/`; pass a path to use
another checkout. Results are read from `<root>/results` (what `reproduce.py` writes) and
models from `<root>/saved_models` (what `make train` writes); nothing is written inside
`notebooks/`.

Two environment variables, for a quick look and for the tests: `BNREG_NOTEBOOK_SMALL=1`
(when results are missing, run a tiny setting: 1 epoch, 32 hidden nodes, 1 seed) and
`BNREG_NOTEBOOK_DATA` (the data spec of such runs, e.g. a small mnist.npz; default auto).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from keras_bnreg import report, sweep
from keras_bnreg.config import RunConfig
from keras_bnreg.studies import SEED_FLAGS, Settings, plan
from keras_bnreg.studies.runs import read_runs
from keras_bnreg.studies.settings import read_requests, record_request

MAKE_TRAIN_MODEL = "amp4_seed0.keras"  # what `make train` writes


def find_root(start=None) -> Path:
    """The repository root: `start` (default: the working directory) or its first parent
    holding `reproduce.py` and `keras_bnreg/`.

    Raises:
        FileNotFoundError: when there is none (then pass the checkout's path).
    """
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "reproduce.py").is_file() and (folder / "keras_bnreg").is_dir():
            return folder
    raise FileNotFoundError(
        f"no keras-bnreg checkout at or above {start}: call find_root('/path/to/keras-bnreg')"
    )


def small() -> bool:
    return os.environ.get("BNREG_NOTEBOOK_SMALL") == "1"


def data_spec() -> str:
    return os.environ.get("BNREG_NOTEBOOK_DATA", "auto")


def settings(root) -> Settings:
    """The setting a notebook runs when it finds no results: tiny, or a quick real one."""
    out = str(Path(root) / "results")
    if small():
        return Settings(out=out, data=data_spec(), epochs=1, seeds=1, hidden=(32,))
    return Settings(out=out, data=data_spec(), epochs=5, seeds=2)


def study_runs(root, study: str) -> list:
    """The runs `study` reads under `<root>/results` (`studies.plan.choose`); when there
    are none, runs what the study needs in the notebook setting first (`studies.plan.plan`,
    every seed flag at the setting's seeds). Rebuilds the tables and figures."""
    out = Path(root) / "results"

    def chosen():
        return plan.choose(out, read_runs(out / "runs"), read_requests(out))[0][study]

    runs = chosen()
    if not any(run.completed for run in runs):
        base = settings(root)
        counts = dict.fromkeys(SEED_FLAGS, base.seeds)
        planned = plan.plan([study], base, counts, read_requests(out))
        print(
            f"no {study} results in {out}: running {len(planned.configs)} small runs",
            file=sys.stderr,
        )
        record_request(out, planned.settings)
        sweep.run_sweep(planned.configs, jobs=1, progress=False)
        runs = chosen()
    report.build_outputs(out)
    return runs


def saved_model(root) -> tuple[Path, dict]:
    """A model from `<root>/saved_models` (`make train`'s first) and its run's config;
    a tiny model is trained there when there is none."""
    models = Path(root) / "saved_models"
    found = sorted(models.glob("*.keras"), key=lambda p: (p.name != MAKE_TRAIN_MODEL, p.name))
    if found:
        config_path = Path(root) / "runs" / found[0].stem / "config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        return found[0], config
    from keras_bnreg import experiment  # TensorFlow only when a model must be trained

    config = RunConfig(
        amplitude=4.0,
        epochs=1 if small() else 5,
        hidden=(32,) if small() else (300,),
        data=data_spec(),
        out=str(Path(root) / "runs"),
        models_dir=str(models),
        run_name="amp4_seed0",
    )
    print(f"no model in {models}: training {config.name}", file=sys.stderr)
    return experiment.run(config, verbose=0).model_path, config.to_dict()
