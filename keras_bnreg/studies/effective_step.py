"""The effective step beside alpha: does the step that training takes on a node's direction
depend on the data amplitude the way alpha does? (Table I's runs, no runs of its own.)

With BN right after a Dense layer the loss ignores the scale of the layer's weights, so what
training changes is their direction; the literature measures BN's effect through that
effective step (van Laarhoven 2017; Hoffer et al. 2018; Li & Arora 2020). The monitor
records per node and epoch the angle a node's weight vector turns over the epoch
(`angular_update`) and, for Adam, that angle per step (`effective_lr`; see
`keras_bnreg/measures.py`). alpha grows in proportion to the amplitude (log-log slope +1);
if BN's data-dependent rate acted like an L2 rate on the direction, the step would follow.

Rules (`stats.TREND_RULE`, `stats.slope_matches`): each quantity's per-seed log-log slope
against amplitude gets a trend verdict against delta = `stats.SLOPE_TOLERANCE`, and is
compared with alpha's own mean slope by the slope rule of the table verdicts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import files, render
from keras_bnreg.studies import stats, table1

NAME = "effective_step"
DESCRIPTION = "the effective step (angle turned per epoch) against amplitude, beside alpha"
IN_ALL = True
SEEDS = None  # no runs of its own: it reads the runs chosen for Table I
USES = (table1.NAME,)
FIGURES = ("effective_step.png",)
# Per-node columns of nodes.csv (the last epoch) compared against amplitude, alpha first.
# (The monitor's `effective_lr` is, for Adam, this angle divided by the epoch's steps: it
# follows by arithmetic, so it is not compared as a second quantity.)
QUANTITIES = {
    "alpha": "alpha = sqrt(w^T R w)",
    "angular_update": "angle turned in the last epoch (rad)",
}


def configs(settings) -> list:
    """None of its own (`USES`)."""
    return []


def measured_runs(runs) -> list:
    """Table I's completed runs whose node tables hold the effective-step columns."""
    return [
        r
        for r in runs
        if r.study == table1.NAME and r.completed and all(q in r.nodes for q in QUANTITIES)
    ]


def epoch_rows(runs, out) -> list[dict]:
    """Per amplitude and epoch: the first layer's mean angular update (history.csv), mean
    and 95% CI half width over seeds."""
    by_key = {}
    for run in runs:
        path = Path(out) / "runs" / run.name / "history.csv"
        if not path.is_file():
            continue
        for row in files.read_csv(path):
            value = row.get("angular_update_mean")
            if value is not None and np.isfinite(value):
                key = (float(run.config["amplitude"]), int(row["epoch"]))
                by_key.setdefault(key, []).append(float(value))
    return [
        {
            "amplitude": amplitude,
            "epoch": epoch,
            "angular_update_mean": float(np.mean(values)),
            "angular_update_ci95": stats.confidence_half_width(values),
            "n_seeds": len(values),
        }
        for (amplitude, epoch), values in sorted(by_key.items())
    ]


def slope_rows(runs) -> list[dict]:
    """Per quantity: per-seed log-log slope of its node mean against amplitude, the trend
    verdict, and whether it follows alpha (the slope rule with alpha's mean slope)."""
    slopes = {q: stats.slopes_by_seed(runs, "amplitude", stats.node_mean(q)) for q in QUANTITIES}
    alpha_slope = float(np.mean(slopes["alpha"])) if len(slopes["alpha"]) else None
    rows = []
    for quantity, label in QUANTITIES.items():
        row = {"quantity": quantity, "label": label}
        row.update(stats.trend_verdict(slopes[quantity], stats.SLOPE_TOLERANCE))
        row["alpha_slope"] = alpha_slope
        row["follows_alpha"] = (
            None
            if alpha_slope is None
            else bool(stats.slope_matches(slopes[quantity], alpha_slope))
        )
        rows.append(row)
    return rows


def analyse(runs, out) -> dict[str, list[dict]]:
    """`effective_step_slopes`: `slope_rows`; `effective_step_epochs`: `epoch_rows`;
    `effective_step`: per amplitude, each quantity's node mean over seeds (`stats.aggregate`
    columns for QUANTITIES)."""
    mine = measured_runs(runs)
    per_amplitude = []
    for amplitude in sorted({float(r.config["amplitude"]) for r in mine}):
        group = [r for r in mine if float(r.config["amplitude"]) == amplitude]
        row = {"amplitude": amplitude, "n_seeds": len(group)}
        for quantity in QUANTITIES:
            values = [stats.node_mean(quantity)(r) for r in group]
            row[f"{quantity}_mean"] = float(np.mean(values))
            row[f"{quantity}_ci95"] = stats.confidence_half_width(values)
        per_amplitude.append(row)
    return {
        "effective_step": per_amplitude,
        "effective_step_slopes": slope_rows(mine) if mine else [],
        "effective_step_epochs": epoch_rows(mine, out),
    }


def answer(slopes) -> str:
    """One sentence: does the angular update follow alpha with amplitude?"""
    by_name = {row["quantity"]: row for row in slopes}
    alpha, step = by_name["alpha"], by_name["angular_update"]
    if alpha["slope_mean"] is None or step["slope_mean"] is None:
        return "no data"
    follows = "follows alpha" if step["follows_alpha"] else "does not follow alpha"
    return (
        f"the angle a node turns per epoch {follows}: its log-log slope against amplitude is "
        f"{render.with_interval(step['slope_mean'], step['slope_ci95'], 3)} "
        f"(**{stats.describe_trend(step)}**), alpha's "
        f"{render.with_interval(alpha['slope_mean'], alpha['slope_ci95'], 3)}"
    )


def section(runs, out) -> tuple[str, list[Path]]:
    out = Path(out)
    result = analyse(runs, out)
    if not result["effective_step"]:
        return "", []
    mine = measured_runs(runs)
    caption = render.caption(mine)
    plot_effective_step(result, out / "effective_step.png", caption)
    slopes = render.markdown_table(
        [
            "quantity (first hidden layer, node mean)",
            "log-log slope vs amplitude",
            "seeds",
            "trend",
            "follows alpha's slope",
        ],
        [
            [
                r["label"],
                render.with_interval(r["slope_mean"], r["slope_ci95"], 3),
                r["n_seeds"],
                f"**{stats.describe_trend(r)}**",
                "-" if r["quantity"] == "alpha" else ("yes" if r["follows_alpha"] else "no"),
            ]
            for r in result["effective_step_slopes"]
        ],
    )
    values = render.markdown_table(
        ["amplitude", "seeds", *(QUANTITIES[q] for q in QUANTITIES)],
        [
            [f"{r['amplitude']:g}", r["n_seeds"]]
            + [render.with_interval(r[f"{q}_mean"], r[f"{q}_ci95"]) for q in QUANTITIES]
            for r in result["effective_step"]
        ],
    )
    text = [
        "## The effective step beside alpha",
        "",
        f"Runs: Table I's, {caption}.",
        "",
        "With BN after a Dense layer, training changes a node's weight direction, not its "
        "scale; the effective step is how far that direction turns. Answer: "
        + answer(result["effective_step_slopes"])
        + ".",
        "",
        "![effective step](effective_step.png)",
        "",
        slopes,
        "",
        values,
        "",
        "Rules: trends as in the claims section (delta = "
        f"{stats.SLOPE_TOLERANCE:g} for log-log slopes); *follows alpha's slope*: alpha's mean "
        "slope lies within the quantity's 95% CI (at least ± "
        f"{stats.SLOPE_TOLERANCE:g}), the slope rule of the table verdicts. The monitor's "
        "`effective_lr` column is, for Adam, this angle divided by the epoch's steps: it "
        "follows by arithmetic and is not a second confirmation.",
    ]
    return "\n".join(text), [out / "effective_step.png"]


def plot_effective_step(result, path, caption=""):
    """Left: the angle turned per epoch, by amplitude. Right: each quantity against
    amplitude, divided by its value at the smallest amplitude, log-log."""
    from keras_bnreg import plots  # matplotlib only when a figure is drawn

    figure, (left, right) = plots.plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    epochs = result["effective_step_epochs"]
    amplitudes = sorted({r["amplitude"] for r in epochs})
    colors = plots.plt.cm.viridis(np.linspace(0, 0.9, max(len(amplitudes), 1)))
    for color, amplitude in zip(colors, amplitudes):
        rows = [r for r in epochs if r["amplitude"] == amplitude]
        left.errorbar(
            [r["epoch"] for r in rows],
            plots.series(rows, "angular_update_mean"),
            yerr=plots.series(rows, "angular_update_ci95"),
            color=color,
            marker="o",
            capsize=2,
            label=f"amplitude A = {amplitude:g}",
        )
    left.set(
        title="how far each node's weight direction turns per epoch",
        xlabel="epoch",
        ylabel="angle between w at the epoch's start and end\n(radians, mean over nodes)",
        yscale="log",
    )
    rows = result["effective_step"]
    x = plots.series(rows, "amplitude")
    for quantity, marker in zip(QUANTITIES, ("s", "o")):
        mean, half = plots.normalised(rows, quantity)
        right.errorbar(x, mean, yerr=half, marker=marker, capsize=3, label=QUANTITIES[quantity])
    right.set(
        title="against amplitude (last epoch), relative to the smallest amplitude",
        xlabel="data amplitude A (pixels = image / 255 * A)",
        ylabel="value / value at the smallest A",
        yscale="log",
    )
    plots.log_ticks(right, x)
    ticker = plots.matplotlib.ticker
    left.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    right.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    right.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(
        "The effective step beside alpha (first hidden layer; means over seeds, 95% CI)\n" + caption
    )
    plots.save(figure, path)
