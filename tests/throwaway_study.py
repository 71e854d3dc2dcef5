"""A study that tests/test_studies.py adds to a copy of the checkout (as the file
keras_bnreg/studies/throwaway.py and one line in its REGISTRY): one run per seed at
amplitude 3, a table and a figure."""

from __future__ import annotations

from pathlib import Path

from keras_bnreg import render

NAME = "throwaway"
DESCRIPTION = "a study the tests add and remove"
IN_ALL = True
SEEDS = "seeds"
USES = ()
FIGURES = ("throwaway.png",)


def configs(settings):
    return [
        settings.config(f"throwaway_seed{seed}", NAME, {}, amplitude=3.0, seed=seed)
        for seed in range(settings.seeds)
    ]


def analyse(runs, out):
    mine = [run for run in runs if run.completed and run.study == NAME]
    return {
        "throwaway": [{"run": r.name, "test": r.summary["final"]["test_accuracy"]} for r in mine]
    }


def section(runs, out):
    rows = analyse(runs, out)["throwaway"]
    if not rows:
        return "", []
    from keras_bnreg import plots

    figure, axis = plots.plt.subplots()
    axis.bar(range(len(rows)), [row["test"] for row in rows])
    plots.save(figure, Path(out) / FIGURES[0])
    table = render.markdown_table(["run", "test accuracy"], [[r["run"], r["test"]] for r in rows])
    return "## Throwaway study\n\n" + table, [Path(out) / FIGURES[0]]
