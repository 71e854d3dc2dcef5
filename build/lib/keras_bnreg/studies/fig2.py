"""Fig. 2: alpha differs from node to node (Table I's seed-0 runs, no runs of its own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import plots, render
from keras_bnreg.studies import table1

NAME = "fig2"
DESCRIPTION = "Fig. 2: per-node alpha of the hidden nodes"
MIN_SPREAD = 0.05  # the claim holds if alpha's coefficient of variation exceeds this


def configs(settings) -> list:
    """Table I's seed-0 runs: the per-node alpha at each amplitude."""
    return [c for c in table1.configs(settings) if c.seed == 0]


def node_tables(runs) -> dict:
    """Amplitude -> the first layer's node table of the completed seed-0 run."""
    return {
        r.config["amplitude"]: r.nodes
        for r in runs
        if r.completed and r.seed == 0 and r.study == table1.NAME
    }


def analyse(runs) -> list[dict]:
    """Per amplitude: alpha's spread over the nodes and how much the weight norm explains."""
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
    return rows


def section(runs, out) -> tuple[str, list[Path]]:
    tables = node_tables(runs)
    if not tables:
        return "", []
    rows = analyse(runs)
    out = Path(out)
    seed0 = [r for r in runs if r.completed and r.seed == 0]
    plots.plot_fig2(tables, out / "fig2.png", render.caption(seed0))
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
