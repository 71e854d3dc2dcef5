"""Depth: the amplitude sweep with 1, 2 and 4 hidden layers of the first hidden width.

Depth 1 is Table I's own runs (same names and configs, so they are trained once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import paper, render
from keras_bnreg.studies import stats, table1

NAME = "depth"
DESCRIPTION = "the amplitude sweep at 1, 2 and 4 hidden layers"
IN_ALL = False
SEEDS = "ablation_seeds"
USES = (table1.NAME,)  # depth 1: Table I's runs at these settings
FIGURES = ("depth.png",)
DEPTHS = (1, 2, 4)
MEASURED = ("alpha", "l2", "l2_bn")


def configs(settings) -> list:
    """Depths 2 and 4 over Table I's amplitudes and seeds (depth 1 comes with `USES`)."""
    width = settings.hidden[0]
    out = []
    for layers in DEPTHS:
        if layers == 1:
            continue
        for a in paper.TABLE1_AMPLITUDES:
            for s in range(settings.seeds):
                out.append(
                    settings.config(
                        f"depth{layers}_amp{a:g}_seed{s}",
                        NAME,
                        {"group": f"depth {layers}"},
                        amplitude=a,
                        seed=s,
                        hidden=(width,) * layers,
                    )
                )
    return out


def by_depth(runs) -> dict:
    """Number of hidden layers -> the completed runs (Table I's runs are depth 1)."""
    groups = {}
    for run in runs:
        if run.completed and run.study in (NAME, table1.NAME):
            groups.setdefault(len(run.config["hidden"]), []).append(run)
    return groups


def layer_mean(layer, quantity):
    return lambda run: float(np.nanmean(run.layers[layer][quantity]))


def analyse(runs, out) -> dict[str, list[dict]]:
    """`depth`: per depth and layer, slopes (95% CI over seeds) and the mean at each
    amplitude."""
    rows = []
    for depth_value, group in sorted(by_depth(runs).items()):
        amplitudes = sorted({float(r.config["amplitude"]) for r in group})
        for layer in group[0].layers:
            row = {"depth": depth_value, "layer": layer}
            for quantity in MEASURED:
                value = layer_mean(layer, quantity)
                slopes = stats.slopes_by_seed(group, "amplitude", value)
                row[f"{quantity}_slope_mean"] = float(np.mean(slopes)) if len(slopes) else None
                row[f"{quantity}_slope_ci95"] = stats.confidence_half_width(slopes)
                for amplitude in amplitudes:
                    values = [value(r) for r in group if r.config["amplitude"] == amplitude]
                    row[f"{quantity}_at_{amplitude:g}"] = float(np.mean(values))
            rows.append(row)
    return {"depth": rows}


def section(runs, out) -> tuple[str, list[Path]]:
    if len(by_depth(runs)) < 2:
        return "", []
    out = Path(out)
    rows = analyse(runs, out)["depth"]
    at = sorted(float(k.removeprefix("alpha_at_")) for k in rows[0] if k.startswith("alpha_at_"))
    low, high = f"{at[0]:g}", f"{at[-1]:g}"
    body = [
        [
            r["depth"],
            r["layer"],
            *(
                render.with_interval(r[f"{q}_slope_mean"], r[f"{q}_slope_ci95"], 3)
                for q in MEASURED
            ),
            f"{r[f'alpha_at_{low}']:.4g}",
            f"{r[f'alpha_at_{high}']:.4g}",
        ]
        for r in rows
    ]
    table = render.markdown_table(
        [
            "hidden layers",
            "layer",
            "slope of alpha",
            "slope of L2 of w",
            "slope of L2 of w_bn",
            f"alpha at A={low}",
            f"alpha at A={high}",
        ],
        body,
    )
    used = [r for group in by_depth(runs).values() for r in group]
    text = "\n".join(
        [
            "## Depth: the amplitude sweep at 1, 2 and 4 hidden layers",
            "",
            f"Runs: {render.caption(used)}.",
            "",
            "Log-log slopes against amplitude (mean ± 95% CI over seeds) of each layer's node "
            "means. Only the first layer sees the scaled data: BN after it removes the scale, "
            "so deeper layers' inputs do not depend on the amplitude (up to epsilon).",
            "",
            table,
            "",
            "![depth](depth.png)",
        ]
    )
    written = render.write_table(out, "depth", rows, text)
    plot_depth(rows, at, out / "depth.png", render.caption(used))
    return text, [*written, out / "depth.png"]


def plot_depth(rows, amplitudes, path, caption=""):
    """Mean alpha of each layer against amplitude, one panel per depth.

    Args:
        rows: the `depth` table's rows (`depth`, `layer`, `alpha_at_<amplitude>`).
        amplitudes: the amplitudes the rows hold.
    """
    from keras_bnreg import plots  # matplotlib only when a figure is drawn

    depths = sorted({row["depth"] for row in rows})
    figure, axes = plots.plt.subplots(
        1, len(depths), figsize=(5 * len(depths), 4.6), layout="constrained", squeeze=False
    )
    for axis, depth in zip(axes[0], depths):
        for row in (r for r in rows if r["depth"] == depth):
            means = [row[f"alpha_at_{a:g}"] for a in amplitudes]
            axis.plot(amplitudes, means, "o-", label=row["layer"])
        plots.log_ticks(axis, amplitudes)
        axis.set(
            yscale="log",
            xlabel="data amplitude",
            ylabel="mean alpha over the layer's nodes",
            title=f"{depth} hidden layer{'s' if depth > 1 else ''}",
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(caption, fontsize=10)
    plots.save(figure, path)
