"""The studies' registry and plans: one module per study declares everything the commands,
the report and the notebooks take from it (keras_bnreg/studies/__init__.py, plan.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers import copy_checkout, person_environment

from keras_bnreg import reproduce
from keras_bnreg.config import RunConfig
from keras_bnreg.studies import REGISTRY, SEED_FLAGS, Settings, plan, registry

BASE = Settings(out="results", data="bundled", epochs=3)
THROWAWAY = Path(__file__).with_name("throwaway_study.py")  # the new study's module


def test_every_registered_study_follows_the_contract():
    studies = registry()
    assert list(studies) == list(REGISTRY)
    for name, study in studies.items():
        if study.seeds is None:
            assert study.module.configs(BASE) == [], name  # it reads other studies' runs
            continue
        configs = study.module.configs(BASE)
        assert all(isinstance(c, RunConfig) and c.study == name for c in configs), name
        assert all(c.out == "results/runs" and c.data == "bundled" for c in configs), name


def test_every_study_analyses_into_tables_and_writes_only_in_its_section(tmp_path):
    for name, study in registry().items():
        tables = study.module.analyse([], tmp_path)
        assert isinstance(tables, dict) and tables, name
        assert all(isinstance(rows, list) for rows in tables.values()), name
        assert study.module.section([], tmp_path) == ("", []), name  # nothing to report
    assert list(tmp_path.iterdir()) == []


def test_a_study_module_that_breaks_the_contract_is_named(monkeypatch):
    broken = types.ModuleType("keras_bnreg.studies.broken")
    broken.NAME, broken.DESCRIPTION = "broken", "declares no IN_ALL"
    monkeypatch.setitem(sys.modules, broken.__name__, broken)
    monkeypatch.setattr("keras_bnreg.studies.REGISTRY", (*REGISTRY, "broken"))
    registry.cache_clear()
    try:
        with pytest.raises(TypeError, match="keras_bnreg.studies.broken must define IN_ALL"):
            registry()
    finally:
        monkeypatch.undo()
        registry.cache_clear()
    assert "broken" not in registry()


def test_the_plan_of_all_runs_every_run_once_with_each_studys_seeds():
    planned = plan.plan(reproduce.in_all(), BASE, SEED_FLAGS, record={})
    assert reproduce.in_all() == ["table1", "table2", "fig2", "ablations"] + [
        "readings",
        "identity",
        "claims",
        "effective_step",
    ]
    names = [config.name for config in planned.configs]
    assert len(names) == len(set(names)) == 110
    seeds = {name: settings.seeds for name, settings in planned.settings.items()}
    assert seeds == {"table1": 5, "table2": 5, "fig2": 1, "ablations": 2, "identity": 1}
    # Studies that read others' runs add none of their own; fig2 reads Table I's seed 0.
    reads = {name: {config.name for config in configs} for name, configs in planned.reads.items()}
    assert reads["fig2"] == {f"table1_amp{a}_seed0" for a in (2, 3, 4, 5, 6)}
    assert reads["readings"] == reads["claims"] == reads["table1"] | reads["table2"]
    assert {f"table1_amp2_seed{s}" for s in (0, 1)} <= reads["ablations"]
    assert "table1_amp2_seed2" not in reads["ablations"]  # Table I at the ablations' seeds


def test_a_study_without_settings_reads_the_runs_its_studies_were_last_run_with():
    record = {"table1": {"data": "bundled", "epochs": 1, "seeds": 2, "hidden": [8]}}
    planned = plan.plan(["readings"], BASE, SEED_FLAGS, record)
    assert planned.settings["table1"].epochs == 1  # its record, not this command's flags
    assert planned.settings["table2"].epochs == 3  # no record: this command's flags
    assert {c.epochs for c in planned.configs if c.study == "table1"} == {1}
    assert "readings" not in planned.settings  # it has no settings to record


def test_a_study_no_command_ran_takes_the_settings_of_the_study_that_read_its_runs():
    record = {"ablations": {"data": "bundled", "epochs": 4, "seeds": 2, "hidden": [8]}}
    assert plan.settings_of("table1", record, "results").epochs == 4  # made by ablations
    assert plan.settings_of("fig2", record, "results").seeds == 1  # from table1's, 1 seed
    assert plan.settings_of("identity", record, "results") is None  # nothing made its runs
    assert plan.settings_of("readings", record, "results") is None  # it has no settings


def test_a_new_study_is_one_file_and_one_registry_line(tmp_path, small_npz):
    """Registered in a copy of the checkout, the study shows in `reproduce.py --help`, in
    the plan of `all` (it sets IN_ALL) and in the report; no other file changes."""
    root = copy_checkout(tmp_path / "keras-bnreg")
    shutil.copy(THROWAWAY, root / "keras_bnreg" / "studies" / "throwaway.py")
    registry_file = root / "keras_bnreg" / "studies" / "__init__.py"
    text = registry_file.read_text()
    end = text.index("\n)", text.index("REGISTRY = ("))
    registry_file.write_text(text[:end] + '\n    "throwaway",' + text[end:])

    def reproduce_py(*args):
        return subprocess.run(
            [sys.executable, "reproduce.py", *map(str, args)],
            cwd=root,
            env=person_environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    shown = " ".join(reproduce_py("--help").stdout.split())
    assert "throwaway (a study the tests add and remove)" in shown
    assert "seeds per setting of table1, table2, cnn and throwaway" in shown
    assert "and throwaway, then the report" in shown  # what all runs
    listed = reproduce_py("all", "--plan", "--seeds", 1).stdout
    assert "throwaway: reads 1 runs" in listed and "  throwaway_seed0 (throwaway)" in listed
    assert "cnn" not in listed  # IN_ALL False
    assert not (root / "results").exists()  # --plan trains and writes nothing
    tiny = ["--epochs", 1, "--seeds", 1, "--hidden", 4, "--jobs", 1]
    made = reproduce_py("throwaway", "--data", small_npz, *tiny)
    assert made.returncode == 0, made.stderr[-2000:]
    report = (root / "results" / "REPORT.md").read_text()
    assert "## Throwaway study" in report and "| throwaway_seed0 |" in report
    assert (root / "results" / "throwaway.png").stat().st_size > 0
