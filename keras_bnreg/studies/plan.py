"""Which runs each study reads: planned for a command, chosen for the report.

Both follow one rule, from the studies' declarations (`registry`):

- a study with settings reads its own runs and those of the studies in its `USES`, all
  made at its settings (`configs_at`);
- a study without (`SEEDS = None`) reads the runs chosen for the studies in its `USES`;
- a study's settings are those of the last command that ran it (`requested.json`); a study
  no command ran takes those of a recorded study that reads its runs at its own settings
  (its runs were made at those), else those of the first study it uses that has settings
  (`settings_of`). Nothing else is guessed: runs that no settings ask for are left out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from keras_bnreg.studies import registry
from keras_bnreg.studies.runs import NO_STUDY, select
from keras_bnreg.studies.settings import Settings, settings_from_record


def configs_at(name: str, settings: Settings) -> list:
    """The configs whose runs study `name` reads at `settings`: its own, then those of the
    studies it uses (at the same settings), each run once."""
    study = registry()[name]
    configs = list(study.module.configs(settings))
    for used in study.uses:
        configs += configs_at(used, settings)
    return _unique(configs)


def settings_of(name: str, record: dict, out) -> Settings | None:
    """The settings that decide study `name`'s runs under `out`, given its `requested.json`
    record (study name -> recorded settings; a damaged entry counts as absent); None when
    nothing decides them (module docstring)."""
    studies = registry()
    study = studies[name]
    if study.seeds is None:
        return None
    own = _recorded(name, record, out)
    if own is not None:
        return own
    for user in studies.values():
        if name in user.uses and user.seeds is not None:
            theirs = _recorded(user.name, record, out)
            if theirs is not None:
                return theirs
    for used in study.uses:
        theirs = settings_of(used, record, out)
        if theirs is not None:
            return _with_seeds(study, theirs)
    return None


def _recorded(name, record, out) -> Settings | None:
    try:
        return _with_seeds(registry()[name], settings_from_record(out, record[name]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _with_seeds(study, settings):
    """`settings` with the study's fixed number of seeds, if it has one."""
    if isinstance(study.seeds, int):
        return dataclasses.replace(settings, seeds=study.seeds)
    return settings


@dataclass(frozen=True)
class Plan:
    """What a command runs: the settings to record per study, and every run once."""

    settings: dict  # study name -> Settings (recorded in requested.json)
    configs: list  # RunConfigs, each run once, in the studies' order
    reads: dict  # each named study -> the configs whose runs it reads


def plan(names, base: Settings, seed_counts: dict, record: dict) -> Plan:
    """The runs of the studies `names`, as `reproduce.py` runs them.

    A study named here takes this command's settings (`base`, with its seed flag's value from
    `seed_counts`); a study without settings brings the studies it uses, at their settings
    (`settings_of`, else this command's).

    Args:
        names: study names (e.g. every study with `IN_ALL`, for `all`).
        base: the command's settings (out, data, epochs, hidden; seeds are per study).
        seed_counts: the seed flags' values, by `SEED_FLAGS` name.
        record: the results directory's `requested.json` contents.
    """
    studies = registry()
    settings = {}

    def command_settings(name):
        return dataclasses.replace(base, seeds=studies[name].seed_count(seed_counts))

    def add(name, named):
        study = studies[name]
        if study.seeds is None:
            for used in study.uses:
                add(used, named=False)
        elif named:
            settings[name] = command_settings(name)
        elif name not in settings:
            settings[name] = settings_of(name, record, base.out) or command_settings(name)

    for name in names:
        add(name, named=True)
    reads = {name: reads_at(name, settings) for name in names}
    configs = _unique(
        config for name, value in settings.items() for config in configs_at(name, value)
    )
    return Plan(settings, configs, reads)


def reads_at(name, settings) -> list:
    """The configs whose runs study `name` reads, given the planned settings."""
    study = registry()[name]
    if study.seeds is not None:
        return configs_at(name, settings[name])
    return _unique(config for used in study.uses for config in reads_at(used, settings))


def choose(out, runs, record: dict) -> tuple[dict, dict]:
    """Study name -> the runs it reads under `out`; run name -> why it was left out.

    Args:
        out: the results directory.
        runs: its run directories, read (`runs.read_runs`).
        record: its `requested.json` contents.
    """
    chosen, reasons = {}, {}
    for name, study in registry().items():
        if study.seeds is None:
            chosen[name] = _unique(run for used in study.uses for run in chosen[used])
            continue
        settings = settings_of(name, record, out)
        if settings is None:
            chosen[name] = []
            continue
        chosen[name], left_out = select(runs, configs_at(name, settings))
        reasons.update(left_out)
    used = {run.name for group in chosen.values() for run in group}
    for run in runs:
        if run.name not in used and run.name not in reasons:
            reasons[run.name] = run.problem or (
                NO_STUDY if run.study is None else "not asked for by any study"
            )
    return chosen, {name: why for name, why in reasons.items() if name not in used}


def _unique(items) -> list:
    """The first of each name, in order."""
    first = {}
    for item in items:
        first.setdefault(item.name, item)
    return list(first.values())
