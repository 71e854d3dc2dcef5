"""The paper's claims no table tests, measured on Table I's and Table II's runs.

1. "A larger alpha regularizes more": test accuracy and the train-test gap against
   amplitude (alpha grows with it) and SNR, with 95% confidence intervals.
2. "Auto-tuning": does alpha move during training, or is it set at the start? alpha per
   epoch from history.csv, against the value at initialisation
   `E[alpha_0^2] = init_std^2 trace(R)` (w_0 ~ N(0, init_std^2 I)).
3. Eq. 4's constraint `w_bn^T w = 1`, on trained nodes: `w_bn = gamma w / sqrt(mv + eps)`,
   so `w_bn^T w = gamma ||w||^2 / sqrt(moving_variance + eps)`, every term in nodes.csv.
4. Fig. 1's caption "alpha_BN ~ sigma_x^2" against Eq. 3's square root: the log-log slope of
   alpha against the inputs' mean second moment (1 by the caption, 1/2 by Eq. 3).
5. Table II's caption "weight norm decreases with increased SNR" against the paper's own
   Table II and the measured norms.

Each claim gets a verdict from the rules in `RULES`, which the report prints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import files, paper, render
from keras_bnreg.config import INPUT_DIM
from keras_bnreg.studies import stats, table1, table2

NAME = "claims"
DESCRIPTION = "the untested claims: regularization, auto-tuning, Eq. 4, the captions"
IN_ALL = True
SEEDS = None  # no runs of its own: it reads the runs chosen for the tables
USES = (table1.NAME, table2.NAME)
FIGURES = ()
SET_AT_START = 2.0  # alpha "set in the first epoch" if it stays within this factor of epoch 1
CONSTRAINT_FACTOR = stats.MAGNITUDE_FACTOR  # w_bn^T w "= 1" if the median is this close

RULES = {
    "trend": "slopes against log(amplitude) or log(SNR). " + stats.TREND_RULE,
    "auto-tuning": f"**set in the first epoch**: every run's mean alpha stays within a factor "
    f"{SET_AT_START:g} of its epoch-1 value at every later epoch (how far it moved from its "
    "value at initialisation during that first epoch is shown beside it); **tuned during "
    "training** otherwise.",
    "constraint": f"**holds**: the median over nodes of w_bn^T w is within a factor "
    f"{CONSTRAINT_FACTOR:g} of 1 in every run; **does not hold** otherwise.",
    "exponent": "the rule of the slope verdicts (`stats.slope_matches`) with the caption's "
    "exponent 1 and Eq. 3's exponent 1/2.",
}


def configs(settings) -> list:
    """None of its own (`USES`)."""
    return []


def trend(runs, key, value) -> dict:
    """Per-seed slope of `value(run)` (an accuracy or gap) against log(config[`key`]), judged
    by `stats.trend_verdict` against a change of `stats.ACCURACY_EFFECT` across the runs'
    range of `key`."""
    by_seed = {}
    for run in runs:
        if run.completed and value(run) is not None:
            by_seed.setdefault(run.seed, []).append((np.log(float(run.config[key])), value(run)))
    slopes = [np.polyfit(*zip(*points), 1)[0] for points in by_seed.values() if len(points) >= 2]
    logs = [x for points in by_seed.values() for x, _ in points]
    log_range = max(logs) - min(logs) if logs else 0.0
    delta = stats.ACCURACY_EFFECT / log_range if log_range > 0 else float("inf")
    return stats.trend_verdict(slopes, delta)


def accuracy_gap(run):
    """Final training accuracy (the last epoch's running value, BN in training mode) minus
    the test accuracy."""
    final = run.summary.get("final", {})
    train, test = final.get("accuracy"), final.get("test_accuracy", final.get("val_accuracy"))
    return None if train is None or test is None else float(train) - float(test)


def test_accuracy(run):
    final = run.summary.get("final", {})
    value = final.get("test_accuracy", final.get("val_accuracy"))
    return None if value is None else float(value)


def regularization_rows(runs) -> list[dict]:
    """Claim 1: per amplitude / SNR, test accuracy and the gap (mean, 95% CI), and the
    trends with their verdicts."""
    rows = []
    for study, key in ((table1.NAME, "amplitude"), (table2.NAME, "snr")):
        mine = [r for r in runs if r.study == study and r.completed]
        for value in sorted({float(r.config[key]) for r in mine}):
            group = [r for r in mine if float(r.config[key]) == value]
            for label, measure in (("test accuracy", test_accuracy), ("gap", accuracy_gap)):
                values = [v for v in map(measure, group) if v is not None]
                rows.append(
                    {
                        "study": study,
                        "key": key,
                        "value": value,
                        "quantity": label,
                        "mean": float(np.mean(values)) if values else None,
                        "ci95": stats.confidence_half_width(values),
                        "alpha_mean": float(np.mean([np.mean(r.nodes["alpha"]) for r in group])),
                        "n_runs": len(values),
                    }
                )
    return rows


def regularization_trends(runs) -> list[dict]:
    out = []
    for study, key in ((table1.NAME, "amplitude"), (table2.NAME, "snr")):
        mine = [r for r in runs if r.study == study]
        for label, measure in (("test accuracy", test_accuracy), ("gap", accuracy_gap)):
            out.append({"study": study, "key": key, "quantity": label, **trend(mine, key, measure)})
    return out


def alpha_over_epochs(run, history) -> dict:
    """Claim 2 for one run: alpha at initialisation (expected), at epoch 1 and at the end,
    and the largest factor alpha moved from epoch 1.

    Args:
        run: the run (its config and summary).
        history: rows of history.csv (each with `epoch` and `alpha_mean`).
    """
    alphas = np.array([float(row["alpha_mean"]) for row in history if row.get("alpha_mean")])
    trace = INPUT_DIM * float(run.summary["data"]["r_mean_eigenvalue"])  # d * mean eigenvalue
    initial = float(run.config["init_std"]) * np.sqrt(trace)
    moved = float(np.max(np.abs(np.log(alphas / alphas[0])))) if len(alphas) else None
    return {
        "run": run.name,
        "alpha_initial_expected": initial,
        "alpha_epoch1": float(alphas[0]) if len(alphas) else None,
        "alpha_final": float(alphas[-1]) if len(alphas) else None,
        "largest_factor_from_epoch1": None if moved is None else float(np.exp(moved)),
        "epochs": len(alphas),
    }


def constraint(run) -> np.ndarray:
    """Claim 3: `w_bn^T w = gamma ||w||^2 / sqrt(moving_variance + eps)` per node."""
    epsilon = float(run.config["bn_epsilon"][0])  # the first BN layer's, in either form
    nodes = run.nodes
    return nodes["gamma"] * nodes["l2"] ** 2 / np.sqrt(nodes["moving_variance"] + epsilon)


def constraint_rows(runs) -> list[dict]:
    rows = []
    for run in runs:
        if not run.completed:
            continue
        values = constraint(run)
        rows.append(
            {
                "run": run.name,
                "amplitude": float(run.config["amplitude"]),
                "snr": run.config["snr"],
                "median": float(np.median(values)),
                "p05": float(np.percentile(values, 5)),
                "p95": float(np.percentile(values, 95)),
            }
        )
    return rows


def constraint_verdict(rows) -> str:
    """The rule RULES["constraint"]."""
    if not rows:
        return "no data"
    close = all(abs(np.log(row["median"])) <= np.log(CONSTRAINT_FACTOR) for row in rows)
    return "holds" if close else "does not hold"


def exponent_row(runs) -> dict:
    """Claim 4: slope of log alpha against log sigma_x^2 (inputs' mean second moment) over
    Table I's amplitudes, per seed; the caption says 1, Eq. 3 says 1/2."""
    mine = [r for r in runs if r.study == table1.NAME and r.completed]
    by_seed = {}
    for run in mine:
        by_seed.setdefault(run.seed, []).append(
            (float(run.summary["data"]["r_mean_eigenvalue"]), float(np.mean(run.nodes["alpha"])))
        )
    slopes = np.array(
        [stats.loglog_slope(*zip(*sorted(p))) for p in by_seed.values() if len(p) >= 2]
    )
    return {
        "slope_mean": float(np.mean(slopes)) if len(slopes) else None,
        "slope_ci95": stats.confidence_half_width(slopes),
        "n_seeds": len(slopes),
        "caption_exponent_1": bool(stats.slope_matches(slopes, 1.0)),
        "eq3_exponent_half": bool(stats.slope_matches(slopes, 0.5)),
    }


def caption_table2_rows(runs) -> list[dict]:
    """Claim 5: the weight norm against SNR, in the paper's Table II and measured."""
    reference = [(snr, row["l2"]) for snr, row in sorted(paper.TABLE2.items())]
    paper_slope = stats.loglog_slope(*zip(*reference))
    mine = [r for r in runs if r.study == table2.NAME]
    # The paper's slope is one exact number: an interval of width 0 (two equal "seeds").
    paper_row = stats.trend_verdict([paper_slope] * 2, stats.SLOPE_TOLERANCE)
    out = [{"quantity": "paper's Table II L2", **paper_row}]
    for label, column in (("L2 of w (raw)", "l2"), ("L2 of w_bn (effective)", "l2_bn")):
        slopes = stats.slopes_by_seed(mine, "snr", stats.node_mean(column))
        out.append({"quantity": label, **stats.trend_verdict(slopes, stats.SLOPE_TOLERANCE)})
    return out


def auto_tuning_rows(runs, out) -> list[dict]:
    """Claim 2 for every completed Table I / II run, from its history.csv."""
    rows = []
    for run in runs:
        path = Path(out) / "runs" / run.name / "history.csv"
        if run.completed and path.is_file():
            rows.append(
                {
                    "study": run.study,
                    "amplitude": float(run.config["amplitude"]),
                    "snr": run.config["snr"],
                    **alpha_over_epochs(run, files.read_csv(path)),
                }
            )
    return rows


def auto_tuning_verdict(rows) -> str:
    """The rule RULES["auto-tuning"]."""
    factors = [r["largest_factor_from_epoch1"] for r in rows if r["epochs"] > 1]
    if not factors:
        return "no data"
    return "set in the first epoch" if max(factors) <= SET_AT_START else "tuned during training"


def analyse(runs, out) -> dict[str, list[dict]]:
    """Every claim's rows: `regularization`, `regularization_trends`, `auto_tuning` (from
    the runs' history.csv under `out`), `constraint`, `exponent` (one row) and
    `caption_table2`; the verdicts follow from them (`auto_tuning_verdict`, ...)."""
    runs = [r for r in runs if r.study in USES]
    return {
        "regularization": regularization_rows(runs),
        "regularization_trends": regularization_trends(runs),
        "auto_tuning": auto_tuning_rows(runs, out),
        "constraint": constraint_rows(runs),
        "exponent": [exponent_row(runs)],
        "caption_table2": caption_table2_rows(runs),
    }


def _slope(row) -> str:
    return render.with_interval(row.get("slope_mean"), row.get("slope_ci95"), 3)


def section(runs, out) -> tuple[str, list[Path]]:
    """Write claims_*.csv and return the report section."""
    runs = [r for r in runs if r.study in USES]
    if not any(r.completed for r in runs):
        return "", []
    out = Path(out)
    result = analyse(runs, out)
    written = []
    for name in ("regularization", "regularization_trends", "auto_tuning", "constraint"):
        rows = result[name]
        if rows:
            columns = list(dict.fromkeys(key for row in rows for key in row))
            files.write_csv(out / f"claims_{name}.csv", rows, columns)
            written.append(out / f"claims_{name}.csv")
    trends = render.markdown_table(
        ["sweep", "quantity", "slope per log unit", "seeds", "verdict"],
        [
            [r["key"], r["quantity"], _slope(r), r["n_seeds"], f"**{stats.describe_trend(r)}**"]
            for r in result["regularization_trends"]
        ],
    )
    per_value = render.markdown_table(
        ["sweep", "value", "mean alpha", "test accuracy", "train - test gap"],
        [
            [
                key,
                f"{value:g}",
                render.number(alpha),
                render.with_interval(accuracy["mean"], accuracy["ci95"], 3),
                render.with_interval(gap["mean"], gap["ci95"], 3),
            ]
            for (key, value, alpha), accuracy, gap in _paired(result["regularization"])
        ],
    )
    tuning = result["auto_tuning"]
    constraints = result["constraint"]
    factors = [r["largest_factor_from_epoch1"] for r in tuning if r["epochs"] > 1]
    initial = [r["alpha_epoch1"] / r["alpha_initial_expected"] for r in tuning]
    exponent = result["exponent"][0]
    caption2 = render.markdown_table(
        ["quantity", "log-log slope against SNR", "verdict"],
        [
            [r["quantity"], _slope(r), f"**{stats.describe_trend(r)}**"]
            for r in result["caption_table2"]
        ],
    )
    text = [
        "## The untested claims",
        "",
        f"From Table I's and Table II's runs: {render.caption(runs)}.",
        "",
        "**1. Does a larger alpha regularize more?** alpha grows with the amplitude and with "
        "the noise; regularization would show as a smaller train-test gap (the training "
        "accuracy is the last epoch's running value, BN in training mode).",
        "",
        per_value,
        "",
        trends,
        "",
        f"**2. Auto-tuning: set once or tuned during training?** Verdict: "
        f"**{auto_tuning_verdict(tuning)}**. Across {len(tuning)} runs, the mean alpha "
        f"moved from its epoch-1 value by at most a factor "
        f"{render.number(max(factors) if factors else None, 3)}; epoch-1 alpha over the "
        f"value expected at initialisation (init_std sqrt(trace R)): "
        f"{render.number(min(initial) if initial else None, 3)} to "
        f"{render.number(max(initial) if initial else None, 3)}.",
        "",
        f"**3. Eq. 4's constraint w_bn^T w = 1 on trained nodes.** Verdict: "
        f"**{constraint_verdict(constraints)}**. Median over nodes per run: "
        f"{render.number(min(r['median'] for r in constraints), 3)} to "
        f"{render.number(max(r['median'] for r in constraints), 3)} "
        "(w_bn^T w = gamma ||w||^2 / sqrt(moving_variance + eps), from nodes.csv).",
        "",
        "**4. Fig. 1's caption, alpha_BN ~ sigma_x^2.** Log-log slope of the mean alpha "
        f"against the inputs' mean second moment over Table I's amplitudes: "
        f"{_slope(exponent)}: the caption's exponent 1 "
        f"{'matches' if exponent['caption_exponent_1'] else 'does not match'}; Eq. 3's 1/2 "
        f"{'matches' if exponent['eq3_exponent_half'] else 'does not match'}.",
        "",
        "**5. Table II's caption, 'weight norm decreases with increased SNR'.**",
        "",
        caption2,
        "",
        "Rules: " + " ".join(f"*{name}*: {rule}" for name, rule in RULES.items()),
    ]
    return "\n".join(text), written


def _paired(rows):
    """(key, value, alpha), accuracy row, gap row for each swept value."""
    accuracy = {(r["key"], r["value"]): r for r in rows if r["quantity"] == "test accuracy"}
    gap = {(r["key"], r["value"]): r for r in rows if r["quantity"] == "gap"}
    return [
        ((key, value, accuracy[key, value]["alpha_mean"]), accuracy[key, value], gap[key, value])
        for key, value in accuracy
        if (key, value) in gap
    ]
