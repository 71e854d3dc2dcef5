"""Readings of the paper: which quantity, in which units, did the paper's columns report?

No training of its own: it reads Table I's and Table II's runs and computes, for every
candidate reading of each paper column, the log-ratio to the paper per row, the slope
against amplitude (Table I) or SNR (Table II) beside the paper's, and for the norms the
L1/L2 ratio beside the paper's (about 22.4 in every row of both tables).

Candidate readings:
- weight: the raw kernel w; the effective (BN-folded) `w_bn = gamma w / sqrt(var + eps)`;
  Eq. 2's `gamma w / sqrt(w^T R w)`; `gamma w / (w^T R w)`. Node norms `||.||_1`, `||.||_2`
  from nodes.csv (`|gamma| ||w|| / alpha^k` needs no kernel: gamma, l1, l2, alpha are there).
- squared or not: the node mean of the norm, or of its square.
- alpha: `sqrt(w^T R w)` (uncentred R, the paper's), centred `sqrt(w^T Cov w)`, and BN's
  moving-statistics estimate; with or without the square root (`w^T R w`).
- "alpha (x 10^8)": the printed number times 1e-8 (the value was multiplied by 1e8 for
  printing) or times 1e8 (the column is in units of 1e8).
- pixel units. (1) `[0, 1] x A`, as trained. (2) `[0, 255] x A`, the same runs: with BN
  right after Dense, the network computes the same function of `x' = 255 x` with
  `w' = w / 255` (the Dense output `w'^T x' = w^T x` is unchanged, so BN and everything
  after it are too, epsilon included); then every weight reading scales by 1/255 and alpha
  (`w'^T R' w' = w^T R w`) does not change. (3) `[0, 255] x A`, retrained: a network
  trained on 255-times larger inputs is, exactly, one trained on these inputs with BN's
  epsilon divided by 255^2 (ablation (e)'s identity); epsilon is small beside the Dense
  output's variance (ablation (a) measures how little it matters), so these runs stand for
  it approximately: the raw kernel as trained, alpha x 255, the BN-folded weights / 255,
  `gamma w / (w^T R w)` / 255^2. Reading (3) is marked approximate.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from keras_bnreg import paper, render
from keras_bnreg.studies import stats, table1, table2

NAME = "readings"
DESCRIPTION = "which reading of the paper's columns fits: weights, units, squares, x1e8"
IN_ALL = True
SEEDS = None  # no runs of its own: it reads the runs chosen for the tables
USES = (table1.NAME, table2.NAME)
FIGURES = ()
PIXEL_SCALE = 255.0

# pixel unit -> (factor on raw w, on BN-folded weights and Eq. 2's, on gamma w / w^T R w,
# on alpha)
UNITS = {
    "[0,1]xA": (1.0, 1.0, 1.0, 1.0),
    "[0,255]xA same runs": (1 / PIXEL_SCALE, 1 / PIXEL_SCALE, 1 / PIXEL_SCALE, 1.0),
    "[0,255]xA retrained (approx.)": (1.0, 1 / PIXEL_SCALE, 1 / PIXEL_SCALE**2, PIXEL_SCALE),
}


def _raw(nodes, norm):
    return nodes[norm]


def _effective(nodes, norm):
    return nodes[f"{norm}_bn"]


def _eq2(nodes, norm):
    return np.abs(nodes["gamma"]) * nodes[norm] / nodes["alpha"]


def _over_rate(nodes, norm):
    return np.abs(nodes["gamma"]) * nodes[norm] / nodes["alpha"] ** 2


# weight -> (node norms from nodes.csv, index of its factor in UNITS)
WEIGHTS = {
    "raw w": (_raw, 0),
    "effective w_bn": (_effective, 1),
    "gamma w / sqrt(w^T R w)": (_eq2, 1),
    "gamma w / (w^T R w)": (_over_rate, 2),
}
# alpha reading -> (nodes.csv column, its name without the square root)
ALPHAS = {
    "alpha = sqrt(w^T R w)": ("alpha", "alpha^2 = w^T R w"),
    "alpha centred = sqrt(w^T Cov w)": ("alpha_centered", "alpha centred^2 = w^T Cov w"),
    "alpha from BN moving statistics": ("alpha_moving", "alpha from BN moving statistics^2"),
}
PRINTED_ALPHA = {"printed x 1e-8": 1e-8, "printed x 1e8": 1e8}


def paper_values(table: str, column: str, printed_alpha: float = 1e-8) -> dict:
    """Setting (amplitude or SNR) -> the paper's value of `column`."""
    if table == table1.NAME:
        if column == "alpha":
            return {a: row["alpha_1e8"] * printed_alpha for a, row in paper.TABLE1.items()}
        return {a: row[column] for a, row in paper.TABLE1.items()}
    return {snr: row[column] for snr, row in paper.TABLE2.items()}


def candidates() -> list[dict]:
    """Every reading: the paper column it reads and `value(nodes) -> per-node numbers`."""
    out = []
    for (weight, (norms, index)), (unit, factors), power in itertools.product(
        WEIGHTS.items(), UNITS.items(), (1, 2)
    ):
        for column in ("l1", "l2"):
            out.append(
                {
                    "column": column,
                    "quantity": weight,
                    "unit": unit,
                    "squared": power == 2,
                    "printed_alpha": None,
                    "value": _scaled(norms, column, factors[index], power),
                }
            )
    for (name, (key, squared_name)), (unit, factors), power, (printed, scale) in itertools.product(
        ALPHAS.items(), UNITS.items(), (1, 2), PRINTED_ALPHA.items()
    ):
        out.append(
            {
                "column": "alpha",
                "quantity": name if power == 1 else squared_name,
                "unit": unit,
                "squared": power == 2,
                "printed_alpha": printed,
                "printed_scale": scale,
                "value": _scaled(lambda nodes, _, key=key: nodes[key], None, factors[3], power),
            }
        )
    return out


def _scaled(norms, column, factor, power):
    return lambda nodes: float(np.mean((factor * norms(nodes, column)) ** power))


def analyse(runs, out) -> dict[str, list[dict]]:
    """`readings`: one row per reading and paper column: log10(measured / paper) per row,
    slopes, and for the norms the L1/L2 ratio beside the paper's."""
    rows = []
    for table, key in ((table1.NAME, "amplitude"), (table2.NAME, "snr")):
        group = [r for r in runs if r.study == table and r.completed]
        if not group:
            continue
        means = {}
        for reading in candidates():
            column = reading["column"]
            if column == "alpha" and table != table1.NAME:
                continue
            expected = paper_values(table, column, reading.get("printed_scale", 1e-8))
            measured = _setting_means(group, key, reading["value"], expected)
            if not measured:
                continue
            settings = sorted(measured)
            slopes = stats.slopes_by_seed(
                group, key, lambda run, value=reading["value"]: value(run.nodes)
            )
            log_ratios = [float(np.log10(measured[s] / expected[s])) for s in settings]
            paper_slope = stats.loglog_slope(list(expected), list(expected.values()))
            row = {
                "table": table,
                "column": column,
                "quantity": reading["quantity"],
                "unit": reading["unit"],
                "squared": reading["squared"],
                "printed_alpha": reading["printed_alpha"] or "",
                **{f"log10_ratio_{key}_{s:g}": r for s, r in zip(settings, log_ratios)},
                "mean_abs_log10_ratio": float(np.mean(np.abs(log_ratios))),
                "slope": float(np.mean(slopes)) if len(slopes) else None,
                "slope_ci95": stats.confidence_half_width(slopes),
                "paper_slope": paper_slope,
                "verdict": stats.verdict(
                    slopes,
                    paper_slope,
                    [measured[s] for s in settings],
                    [expected[s] for s in settings],
                ),
            }
            means[(reading["quantity"], reading["unit"], reading["squared"], column)] = measured
            rows.append(row)
        _add_norm_ratios(rows, table, means)
    return {"readings": rows}


def _setting_means(runs, key, value, expected) -> dict:
    out = {}
    for setting in expected:
        values = [value(r.nodes) for r in runs if float(r.config[key]) == setting]
        if values and all(np.isfinite(values)) and np.mean(values) > 0:
            out[setting] = float(np.mean(values))
    return out


def _add_norm_ratios(rows, table, means) -> None:
    """L1/L2 of the same reading (mean over rows) beside the paper's, on the norm rows."""
    reference = paper.TABLE1 if table == table1.NAME else paper.TABLE2
    paper_ratio = float(np.mean([row["l1"] / row["l2"] for row in reference.values()]))
    for row in rows:
        if row["table"] != table or row["column"] not in ("l1", "l2"):
            continue
        key = (row["quantity"], row["unit"], row["squared"])
        l1, l2 = means.get((*key, "l1"), {}), means.get((*key, "l2"), {})
        shared = sorted(set(l1) & set(l2))
        row["l1_over_l2"] = float(np.mean([l1[s] / l2[s] for s in shared])) if shared else None
        row["paper_l1_over_l2"] = paper_ratio


def score(row) -> tuple:
    """Order readings: the slope first (matching or not), then the magnitude."""
    slope_ok = row["verdict"] in ("reproduced", "slope only")
    return (not slope_ok, row["mean_abs_log10_ratio"])


def best_per_column(rows) -> list[dict]:
    best = {}
    for row in rows:
        key = (row["table"], row["column"])
        if key not in best or score(row) < score(best[key]):
            best[key] = row
    return [best[key] for key in sorted(best)]


def best_consistent(rows) -> dict | None:
    """The single consistent reading (one pixel unit, one weight, squared or not, one alpha
    reading in the same unit) whose worst column is closest to the paper.

    Returns:
        `{"unit", "quantity", "squared", "alpha", "worst_abs_log10_ratio",
        "all_slopes_match", "columns"}` or None when there are no rows.
    """
    norm_rows = [r for r in rows if r["column"] in ("l1", "l2")]
    alpha_rows = [r for r in rows if r["column"] == "alpha"]
    options = []
    for unit, weight, squared in {(r["unit"], r["quantity"], r["squared"]) for r in norm_rows}:
        chosen = [
            r
            for r in norm_rows
            if (r["unit"], r["quantity"], r["squared"]) == (unit, weight, squared)
        ]
        alphas = [r for r in alpha_rows if r["unit"] == unit] or [None]
        for alpha in alphas:
            columns = chosen + ([alpha] if alpha else [])
            options.append(
                {
                    "unit": unit,
                    "quantity": weight,
                    "squared": squared,
                    "alpha": None
                    if alpha is None
                    else f"{alpha['quantity']}, {alpha['printed_alpha']}",
                    "worst_abs_log10_ratio": max(r["mean_abs_log10_ratio"] for r in columns),
                    "all_slopes_match": all(
                        r["verdict"] in ("reproduced", "slope only") for r in columns
                    ),
                    "columns": columns,
                }
            )
    if not options:
        return None
    return min(options, key=lambda o: (not o["all_slopes_match"], o["worst_abs_log10_ratio"]))


def markdown(rows) -> str:
    return render.markdown_table(
        [
            "table",
            "column",
            "reading",
            "pixels",
            "squared",
            "mean abs log10(measured / paper)",
            "slope (95% CI)",
            "paper's slope",
            "L1/L2 (paper)",
            "verdict",
        ],
        [
            [
                r["table"],
                r["column"],
                r["quantity"] + (f" ({r['printed_alpha']})" if r["printed_alpha"] else ""),
                r["unit"],
                "yes" if r["squared"] else "no",
                f"{r['mean_abs_log10_ratio']:.2f}",
                render.with_interval(r["slope"], r["slope_ci95"], 3),
                f"{r['paper_slope']:+.2f}",
                "-"
                if r.get("l1_over_l2") is None
                else f"{r['l1_over_l2']:.3g} ({r['paper_l1_over_l2']:.3g})",
                r["verdict"],
            ]
            for r in rows
        ],
    )


def section(runs, out) -> tuple[str, list[Path]]:
    rows = analyse(runs, out)["readings"]
    if not rows:
        return "", []
    out = Path(out)
    written = render.write_table(out, "readings", rows, markdown(rows))
    best = best_per_column(rows)
    consistent = best_consistent(rows)
    lines = [
        "## Readings of the paper: which quantity did its columns report?",
        "",
        f"Runs: {render.caption([r for r in runs if r.completed])}. Every reading is "
        "computed from the same runs (nothing retrained); the full table is `readings.md` "
        f"/ `readings.csv` ({len(rows)} rows). A pixel unit of [0, 255] x A reads the same "
        "runs' function with w / 255 and alpha unchanged (BN right after Dense); the "
        "'retrained' unit stands for a network trained on [0, 255] pixels through the "
        "epsilon identity (approximate: epsilon differs by 255^2).",
        "",
        "Best reading per paper column (slope first, then magnitude; log10 ratio 0 = equal, "
        "0.3 = a factor 2):",
        "",
        markdown(best),
    ]
    for scope, scoped in (
        ("both tables", rows),
        ("Table I alone", [r for r in rows if r["table"] == table1.NAME]),
    ):
        consistent = best_consistent(scoped)
        if consistent:
            lines += ["", consistent_sentence(scope, consistent)]
    return "\n".join(lines), written


def configs(settings) -> list:
    """None of its own (`USES`)."""
    return []


def consistent_sentence(scope: str, consistent: dict) -> str:
    """The report's sentence on the best single consistent reading over `scope`."""
    fits = consistent["all_slopes_match"] and consistent["worst_abs_log10_ratio"] <= np.log10(
        stats.MAGNITUDE_FACTOR
    )
    return (
        f"Best single consistent reading for {scope} (one pixel unit, one weight for L1 and "
        f"L2, one alpha reading): {consistent['quantity']}"
        f"{' squared' if consistent['squared'] else ''}, pixels {consistent['unit']}, alpha "
        f"{consistent['alpha'] or '-'}; its worst column is off by a factor "
        f"{10 ** consistent['worst_abs_log10_ratio']:.3g} on average over the rows (mean abs "
        f"log10 ratio {consistent['worst_abs_log10_ratio']:.2f}); "
        + (
            "every slope matches the paper's. "
            if consistent["all_slopes_match"]
            else "not every slope matches the paper's. "
        )
        + (
            f"**A single consistent reading fits every column of {scope}** (slope and a factor "
            f"{stats.MAGNITUDE_FACTOR:g})."
            if fits
            else f"**No single consistent reading fits every column of {scope}** within the "
            f"verdict rules (slope and a factor {stats.MAGNITUDE_FACTOR:g})."
        )
    )
