"""The studies: one module per study, and the registry every command reads them from.

Adding a study is writing its module in this folder and adding its name to `REGISTRY`:
`reproduce.py` (its command, `--help`, `all`, `--plan`), the report, the notebooks and the
benchmarks all take what they need from the module, through `registry()` and `plan`.

A study module defines (and imports nothing heavy at module level: Keras, TensorFlow and
matplotlib only inside the functions that need them, so `reproduce.py --help` stays fast):

- `NAME`: its name, the command `reproduce.py NAME`; equal to its line in `REGISTRY`.
- `DESCRIPTION`: one line, shown by `reproduce.py --help`.
- `IN_ALL`: True when `reproduce.py all` runs it.
- `SEEDS`: how many seeds its runs take: `"seeds"` (the `--seeds` flag), `"ablation_seeds"`
  (`--ablation-seeds`), a number (fixed), or None: it has no settings of its own and reads
  the runs of the studies in `USES` as those studies' own settings chose them.
- `USES`: the studies (registered before it) whose runs it reads besides its own. A study
  with settings reads their runs made at its own settings (they are planned with its runs,
  and the sweep trains a run shared by two studies once).
- `FIGURES`: the figure files its section writes into the results directory.
- `configs(settings) -> [RunConfig]`: its own runs (each with `study=NAME`); [] for none.
- `analyse(runs, out) -> {table name: [row]}`: its results as tables (rows of plain
  numbers and strings), computed from `runs` (the runs chosen for it, its own and those of
  `USES`) and, where it needs more than their node tables and summaries, the files of those
  runs under the results directory `out`. Writes nothing.
- `section(runs, out) -> (markdown, [paths written])`: calls `analyse`, writes its tables
  and `FIGURES` under `out`, returns its REPORT.md section; `("", [])` when the runs hold
  nothing to report.
"""

from __future__ import annotations

import functools
import importlib
import types
from dataclasses import dataclass

from keras_bnreg.studies.settings import SEED_FLAGS, Settings

# One line per study, in the order of the report (a study after those it uses).
REGISTRY = (
    "table1",
    "table2",
    "fig2",
    "ablations",
    "baseline",
    "depth",
    "readings",
    "identity",
    "claims",
    "effective_step",
    "cnn",
)


@dataclass(frozen=True)
class Study:
    """A study module's declarations (see this package's docstring)."""

    name: str
    description: str
    in_all: bool
    seeds: str | int | None
    uses: tuple[str, ...]
    figures: tuple[str, ...]
    module: types.ModuleType

    def seed_count(self, counts: dict) -> int | None:
        """Its number of seeds, given the seed flags' values (`SEED_FLAGS` names)."""
        return counts[self.seeds] if isinstance(self.seeds, str) else self.seeds


@functools.cache
def registry() -> dict[str, Study]:
    """Study name -> its declarations, in `REGISTRY`'s order; every module checked.

    Raises:
        TypeError: a study module does not follow the contract (the message names it).
    """
    studies = {}
    for name in REGISTRY:
        module = importlib.import_module(f"{__name__}.{name}")
        studies[name] = _declared(name, module, studies)
    return studies


def _declared(name, module, earlier) -> Study:
    def need(attribute, check, wanted):
        value = getattr(module, attribute, None)
        if not check(value):
            raise TypeError(
                f"study module {module.__name__} must define {attribute} ({wanted}). "
                f"Received: {value!r}"
            )
        return value

    need("NAME", lambda v: v == name, f"equal to its registry line {name!r}")
    description = need("DESCRIPTION", lambda v: isinstance(v, str) and v, "a one-line string")
    in_all = need("IN_ALL", lambda v: isinstance(v, bool), "True or False")
    seeds = need(
        "SEEDS",
        lambda v: v is None or v in SEED_FLAGS or (type(v) is int and v >= 1),
        f"one of {', '.join(map(repr, SEED_FLAGS))}, a number >= 1, or None",
    )
    uses = need(
        "USES",
        lambda v: isinstance(v, tuple) and all(u in earlier for u in v),
        "a tuple of studies registered before it",
    )
    figures = need(
        "FIGURES",
        lambda v: isinstance(v, tuple) and all(isinstance(f, str) for f in v),
        "a tuple of file names",
    )
    for function in ("configs", "analyse", "section"):
        need(function, callable, "a function")
    if seeds is None and not uses:
        raise TypeError(f"study module {module.__name__}: SEEDS None needs studies in USES")
    return Study(name, description, in_all, seeds, uses, figures, module)


__all__ = ["REGISTRY", "SEED_FLAGS", "Settings", "Study", "registry"]
