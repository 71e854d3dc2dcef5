"""Table I: data amplitude 2..6 on clean data; mean L1, L2 and alpha of the hidden nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import paper, render
from keras_bnreg.studies import stats

NAME = "table1"
DESCRIPTION = "Table I: amplitude 2..6"
IN_ALL = True
SEEDS = "seeds"
USES = ()
FIGURES = ("table1.png",)
ROLE = {"group": "amplitude sweep"}

# (label, run -> number, paper column, derived from another row by arithmetic)
QUANTITIES = [
    ("L1 of w (raw kernel)", stats.node_mean("l1"), "l1", False),
    ("L1 of w_bn (effective)", stats.node_mean("l1_bn"), "l1", False),
    ("L2 of w (raw kernel)", stats.node_mean("l2"), "l2", False),
    ("L2 of w_bn (effective)", stats.node_mean("l2_bn"), "l2", False),
    ("‖w‖² (raw, squared)", stats.node_mean("l2", 2), "l2", True),
    ("‖w_bn‖² (effective, squared)", stats.node_mean("l2_bn", 2), "l2", True),
    ("alpha = sqrt(w^T R w)", stats.node_mean("alpha"), "alpha", False),
    ("alpha, centred", stats.node_mean("alpha_centered"), "alpha", False),
    ("alpha, BN moving statistics", stats.node_mean("alpha_moving"), "alpha", False),
    ("w^T R w = alpha²", stats.node_mean("alpha", 2), "alpha", True),
]


def configs(settings) -> list:
    """Amplitudes 2..6 (clean data), seeds 0..n-1."""
    return [
        settings.config(f"table1_amp{a:g}_seed{s}", NAME, ROLE, amplitude=a, seed=s)
        for a in paper.TABLE1_AMPLITUDES
        for s in range(settings.seeds)
    ]


def paper_column(column: str) -> dict:
    """Amplitude -> the paper's value, alpha read as its printed number x 1e-8."""
    scale, key = (1e-8, "alpha_1e8") if column == "alpha" else (1.0, column)
    return {a: row[key] * scale for a, row in paper.TABLE1.items()}


def analyse(runs, out) -> dict[str, list[dict]]:
    """`table1`: one row per amplitude; `table1_slopes`: the slope rows (`slope_rows`)."""
    runs = [r for r in runs if r.study == NAME]
    return {"table1": amplitude_rows(runs), "table1_slopes": slope_rows(runs)}


def amplitude_rows(runs) -> list[dict]:
    """One row per amplitude: measured means with 95% CIs beside the paper's row."""
    rows = []
    for row in stats.aggregate(runs, "amplitude"):
        reference = paper.TABLE1.get(float(row["amplitude"]), {})
        rows.append(
            {
                **row,
                "paper_l1": reference.get("l1"),
                "paper_l2": reference.get("l2"),
                "paper_alpha_1e8": reference.get("alpha_1e8"),
            }
        )
    return rows


def slope_rows(runs, quantities=QUANTITIES, key="amplitude", reference=None) -> list[dict]:
    """Per quantity: per-seed log-log slopes against config[`key`], the paper's slope, the
    magnitude ratio per row and the verdict (stats.verdict)."""
    reference = reference or {c: paper_column(c) for c in ("l1", "l2", "alpha")}
    out = []
    for label, value, column, derived in quantities:
        expected = reference[column]
        slopes = stats.slopes_by_seed(runs, key, value)
        measured, wanted = _row_means(runs, key, value, expected)
        paper_slope = stats.loglog_slope(list(expected), list(expected.values()))
        out.append(
            {
                "quantity": label,
                "paper_column": column,
                "derived": derived,
                "slope_mean": float(np.mean(slopes)) if len(slopes) else None,
                "slope_ci95": stats.confidence_half_width(slopes),
                "n_seeds": len(slopes),
                "paper_slope": paper_slope,
                "ratio_first_row": measured[0] / wanted[0] if measured else None,
                "ratio_last_row": measured[-1] / wanted[-1] if measured else None,
                "verdict": stats.verdict(slopes, paper_slope, measured, wanted, derived),
            }
        )
    return out


def _row_means(runs, key, value, expected):
    """Measured means and the paper's values at the settings both have (sorted)."""
    measured, wanted = [], []
    for setting in sorted(expected):
        values = [value(r) for r in runs if r.completed and float(r.config[key]) == setting]
        if values:
            measured.append(float(np.mean(values)))
            wanted.append(expected[setting])
    return measured, wanted


def slope_markdown(rows) -> str:
    return render.markdown_table(
        [
            "quantity",
            "paper column",
            "measured slope (95% CI)",
            "paper's slope",
            "measured / paper, first and last row",
            "verdict",
        ],
        [
            [
                r["quantity"],
                r["paper_column"],
                render.with_interval(r["slope_mean"], r["slope_ci95"], 3),
                f"{r['paper_slope']:+.2f}",
                render.number(r["ratio_first_row"], 3)
                + ", "
                + render.number(r["ratio_last_row"], 3),
                f"**{r['verdict']}**",
            ]
            for r in rows
        ],
    )


def markdown(rows) -> str:
    body = [
        [
            f"{float(row['amplitude']):g}",
            render.number(row["paper_l1"]),
            render.with_interval(row["l1_mean"], row["l1_ci95"]),
            render.with_interval(row["l1_bn_mean"], row["l1_bn_ci95"]),
            render.number(row["paper_l2"]),
            render.with_interval(row["l2_mean"], row["l2_ci95"]),
            render.with_interval(row["l2_bn_mean"], row["l2_bn_ci95"]),
            "-" if row["paper_alpha_1e8"] is None else f"{row['paper_alpha_1e8'] * 1e-8:.3g}",
            render.with_interval(row["alpha_mean"], row["alpha_ci95"]),
            render.with_interval(row["test_accuracy_mean"], row["test_accuracy_ci95"], 3),
            f"{row['n_seeds']} ({row['n_diverged']} diverged)",
        ]
        for row in rows
    ]
    headers = [
        "amplitude",
        "L1 paper",
        "L1 of w",
        "L1 of w_bn",
        "L2 paper",
        "L2 of w",
        "L2 of w_bn",
        "alpha paper (x 1e-8)",
        "alpha measured",
        "test acc.",
        "seeds",
    ]
    return render.markdown_table(headers, body)


def section(runs, out) -> tuple[str, list[Path]]:
    """Write table1.csv/.md/.png and table1_slopes.csv/.md; return the report section and
    the files."""
    runs = [r for r in runs if r.study == NAME]
    if not runs:
        return "", []
    out = Path(out)
    tables = analyse(runs, out)
    rows, slopes = tables["table1"], tables["table1_slopes"]
    written = render.write_table(out, "table1", rows, markdown(rows))
    written += render.write_table(out, "table1_slopes", slopes, slope_markdown(slopes))
    plot_table1(rows, out / "table1.png", render.caption(runs))
    written.append(out / "table1.png")
    text = [
        "## Table I: data amplitude 2..6",
        "",
        f"Runs: {render.caption(runs)}.",
        "",
        markdown(rows),
        "",
        "The paper's alpha column is printed 'x 10^8'; here it is read as its value x 1e-8 "
        "(the `readings` study tries the other reading). Measured values are means over the "
        f"{render.width_text(runs)} hidden nodes, then the mean over seeds ± the 95% confidence "
        "interval (t-distribution).",
        "",
        "![table1](table1.png)",
        "",
        "Log-log slopes against amplitude, fitted per seed, and the magnitude against the "
        "paper's row (every paper column has its own rows; derived rows restate another):",
        "",
        slope_markdown(slopes),
    ]
    return "\n".join(text), written


def plot_table1(rows, path, caption=""):
    """Table I (log-log): measured norms and alpha beside the paper's, normalised to the
    first amplitude (top: slopes compare by eye) and as values (bottom: magnitudes)."""
    from keras_bnreg import plots  # matplotlib only when a figure is drawn

    plots.require(rows, ["amplitude", "l1_mean", "l2_mean", "alpha_mean", "paper_l1", "paper_l2"])
    x = plots.series(rows, "amplitude")
    columns = [
        (
            "L1",
            [
                ("l1", "L1 of w (raw)", plots.RAW),
                ("l1_bn", "L1 of w_bn (effective)", plots.EFFECTIVE),
            ],
            plots.series(rows, "paper_l1"),
        ),
        (
            "L2",
            [
                ("l2", "L2 of w (raw)", plots.RAW),
                ("l2_bn", "L2 of w_bn (effective)", plots.EFFECTIVE),
            ],
            plots.series(rows, "paper_l2"),
        ),
        (
            "alpha",
            [
                ("alpha", "alpha = sqrt(w^T R w)", plots.RAW),
                ("alpha_centered", "alpha, centred", plots.EFFECTIVE),
                ("alpha_moving", "alpha, BN moving statistics", plots.OTHER),
            ],
            plots.series(rows, "paper_alpha_1e8") * 1e-8,
        ),
    ]
    plots.table_figure(
        x,
        rows,
        columns,
        "data amplitude A (pixels = image / 255 x A)",
        "Table I: mean over the hidden nodes against amplitude (paper's alpha read x 1e-8)",
        caption,
        path,
    )
