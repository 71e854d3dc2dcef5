"""Fig. 2: alpha differs from node to node (Table I's seed-0 runs, no runs of its own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import render
from keras_bnreg.studies import table1

NAME = "fig2"
DESCRIPTION = "Fig. 2: per-node alpha of the hidden nodes"
IN_ALL = True
SEEDS = 1  # Table I's seed-0 runs
USES = (table1.NAME,)
FIGURES = ("fig2.png",)
MIN_SPREAD = 0.05  # the claim holds if alpha's coefficient of variation exceeds this


def configs(settings) -> list:
    """None of its own: it reads Table I's runs at its settings (one seed: seed 0)."""
    return []


def node_tables(runs) -> dict:
    """Amplitude -> the first layer's node table of the completed seed-0 run."""
    return {
        r.config["amplitude"]: r.nodes
        for r in runs
        if r.completed and r.seed == 0 and r.study == table1.NAME
    }


def analyse(runs, out) -> dict[str, list[dict]]:
    """`fig2`: per amplitude, alpha's spread over the nodes and how much the weight norm
    explains."""
    rows = []
    for amplitude, table in sorted(node_tables(runs).items()):
        alpha, l2 = np.asarray(table["alpha"]), np.asarray(table["l2"])
        share = alpha / l2
        rows.append(
            {
                "amplitude": amplitude,
                "alpha_mean": float(alpha.mean()),
                "alpha_cv": float(alpha.std() / alpha.mean()),
                "alpha_max_over_min": float(alpha.max() / alpha.min()),
                "data_share_cv": float(share.std() / share.mean()),
                "l2_cv": float(l2.std() / l2.mean()),
                "log_correlation": float(np.corrcoef(np.log(alpha), np.log(l2))[0, 1]),
            }
        )
    return {"fig2": rows}


def section(runs, out) -> tuple[str, list[Path]]:
    tables = node_tables(runs)
    if not tables:
        return "", []
    out = Path(out)
    rows = analyse(runs, out)["fig2"]
    seed0 = [r for r in runs if r.completed and r.seed == 0]
    plot_fig2(tables, out / "fig2.png", render.caption(seed0))
    body = [
        [
            f"{r['amplitude']:g}",
            f"{r['alpha_mean']:.4g}",
            f"{r['alpha_cv']:.3f}",
            f"{r['alpha_max_over_min']:.1f}",
            f"{r['data_share_cv']:.3f}",
            f"{r['l2_cv']:.3f}",
            f"{r['log_correlation']:.2f}",
        ]
        for r in rows
    ]
    spread = [r["alpha_cv"] for r in rows]
    verdict = "reproduced" if min(spread) > MIN_SPREAD else "not reproduced"
    text = [
        "## Fig. 2: alpha across the hidden nodes",
        "",
        f"Runs: {render.caption(seed0)}.",
        "",
        "![fig2](fig2.png)",
        "",
        "The paper's claim: alpha differs from node to node. Spread of alpha over the "
        "nodes (seed 0), and how much of it the weight norm explains:",
        "",
        render.markdown_table(
            [
                "amplitude",
                "mean alpha",
                "CV of alpha",
                "max/min",
                "CV of data share",
                "CV of ‖w‖",
                "corr(log alpha, log ‖w‖)",
            ],
            body,
        ),
        "",
        f"Verdict (rule: alpha's coefficient of variation over the nodes > {MIN_SPREAD} at "
        f"every amplitude; measured {min(spread):.3f} to {max(spread):.3f}): **{verdict}**. "
        "Whether this is a data-driven rate, as the paper reads it, is what the factor split "
        "shows: a node's alpha is its weight norm times the data's share along its direction.",
    ]
    return "\n".join(text), [out / "fig2.png"]


def alpha_factors(alpha, l2):
    """Split `alpha_j = ||w_j|| * sqrt(w_j^T R w_j / ||w_j||^2)` into its two factors.

    Returns:
        `(weight_norm, data_share)`: `||w_j||` (the optimizer's history) and the square root
        of the Rayleigh quotient of R along `w_j` (the data's share). Their product is alpha.
    """
    alpha, l2 = np.asarray(alpha, float), np.asarray(l2, float)
    if alpha.shape != l2.shape or np.any(l2 <= 0):
        raise ValueError(
            f"alpha and l2 need the same shape and l2 > 0. Received: shapes "
            f"{alpha.shape}, {l2.shape}"
        )
    return l2, alpha / l2


def plot_fig2(node_tables, path, caption=""):
    """Per-node alpha by amplitude (sorted, histogram) and its two factors, like Fig. 2.

    Args:
        node_tables: amplitude -> per-node arrays with `alpha`, `alpha_centered`, `l2`.
    """
    from keras_bnreg import plots  # matplotlib only when a figure is drawn

    if not node_tables:
        raise ValueError("plot_fig2 needs at least one amplitude's node table")
    colors = plots.plt.cm.viridis(np.linspace(0, 0.9, len(node_tables)))
    figure, axes = plots.plt.subplots(2, 2, figsize=(13, 9), layout="constrained")
    for color, (amplitude, table) in zip(colors, sorted(node_tables.items())):
        alpha = np.asarray(table["alpha"], float)
        label = f"A = {amplitude:g}"
        axes[0, 0].plot(np.sort(alpha)[::-1], color=color, label=label)
        axes[0, 1].hist(alpha, bins=30, color=color, alpha=0.5, label=label)
        for centred, marker in ((False, "o"), (True, "x")):
            values = table["alpha_centered"] if centred else alpha
            norm, share = alpha_factors(values, table["l2"])
            axes[1, 0 if not centred else 1].scatter(
                norm, share, s=8, color=color, marker=marker, label=label
            )
    axes[0, 0].set(
        title="alpha per node, sorted",
        xlabel="node (sorted by alpha)",
        ylabel="alpha = sqrt(w^T R w)",
        yscale="log",
    )
    axes[0, 1].set(title="distribution of alpha over nodes", xlabel="alpha", ylabel="nodes")
    for axis, which in (
        (axes[1, 0], "uncentred R (the paper's)"),
        (axes[1, 1], "centred covariance (what BN divides by)"),
    ):
        axis.set(
            title=f"alpha = ||w|| x sqrt(Rayleigh quotient)\n{which}",
            xlabel="||w_j|| (weight norm)",
            ylabel="sqrt(w^T R w / ||w||^2) (data share)",
            xscale="log",
            yscale="log",
        )
    for axis in axes.flat:
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(
        "Fig. 2: alpha differs from node to node; what each node's alpha is made of\n" + caption
    )
    plots.save(figure, path)
