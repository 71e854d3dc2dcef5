"""Statistics of runs and the verdict rules (NumPy and SciPy only, no Keras).

Every verdict the report prints comes from a rule in this module, and the report's legend
prints the same rule text (`VERDICT_RULES`).
"""

from __future__ import annotations

import numpy as np

from keras_bnreg import paper

# Per-node quantities of the first hidden layer averaged per run, then across seeds.
QUANTITIES = ("l1", "l2", "l1_bn", "l2_bn", "alpha", "alpha_centered", "alpha_moving")
ACCURACIES = ("train_accuracy", "test_accuracy")
SLOPE_TOLERANCE = 0.1  # the least half width a slope is compared with (1 seed has no CI)
MAGNITUDE_FACTOR = 2.0  # "same magnitude": within this factor of the paper in every row

VERDICT_RULES = (
    f"*slope*: the paper's log-log slope lies within the 95% confidence interval "
    f"(t-distribution over seeds, at least ± {SLOPE_TOLERANCE}) of the measured per-seed "
    f"slopes. *magnitude*: the measured mean is within a factor {MAGNITUDE_FACTOR:g} of the "
    "paper's value in every row. Verdict: **reproduced** = slope and magnitude; **slope "
    "only** / **magnitude only** = one of the two; **not reproduced** = neither. A quantity "
    "that follows from another by arithmetic (w^T R w = alpha^2, a squared norm) is marked "
    "**derived**: it is not a second, independent reproduction."
)


# A trend is judged against the smallest effect that would matter (an equivalence test), so
# that an effect near zero cannot flip between "increases" and "no trend" from one machine's
# float rounding to another's.
ACCURACY_EFFECT = 0.01  # accuracy or gap: 1 percentage point across a sweep's whole range
TREND_RULE = (
    "A trend is a per-seed least-squares slope; each is judged against a stated smallest "
    "effect of interest delta (accuracy and the train-test gap: a change of "
    f"{ACCURACY_EFFECT * 100:g} percentage point across the sweep's whole range, i.e. delta = "
    f"{ACCURACY_EFFECT:g} / ln(max/min) per log unit; log-log slopes: delta = "
    f"{SLOPE_TOLERANCE:g}). **no trend larger than delta**: the 95% confidence interval (t over "
    "seeds) lies inside (-delta, +delta); **increases** / **decreases by at least delta**: it "
    "lies wholly above +delta / below -delta; **undecided**: it straddles ±delta, with the "
    "seeds that the observed spread would need to decide (more than 100: the effect sits on "
    "±delta)."
)
MOST_SEEDS = 100  # "undecided" estimates of more seeds than this are reported as "> 100"


def confidence_half_width(values) -> float | None:
    """Half width of the 95% confidence interval of the mean of `values`:
    `t_{0.975, n-1} * s / sqrt(n)` (s the sample std). None for fewer than two values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    from scipy import stats as scipy_stats  # a slow import: not at `reproduce.py --help`

    t = float(scipy_stats.t.ppf(0.975, len(values) - 1))
    return float(t * np.std(values, ddof=1) / np.sqrt(len(values)))


def run_means(run) -> dict:
    """Per-run scalars: node means of QUANTITIES and the final accuracies."""
    out = {q: float(np.mean(run.nodes[q])) for q in QUANTITIES if q in run.nodes}
    final = run.summary.get("final", {})
    out["train_accuracy"] = final.get("accuracy")
    # test_accuracy: scored at the end; runs validated on the test split have it as val_.
    out["test_accuracy"] = final.get("test_accuracy", final.get("val_accuracy"))
    return out


def aggregate(runs, key: str) -> list[dict]:
    """One row per value of config[`key`]: mean and 95% CI half width across seeds.

    Diverged or interrupted runs are counted in `n_diverged` / `n_failed`, never averaged.
    """
    groups = {}
    for run in runs:
        groups.setdefault(run.config[key], []).append(run)
    rows = []
    for value in sorted(groups, key=float):
        group = groups[value]
        done = [run_means(r) for r in group if r.completed]
        row = {
            key: value,
            "n_seeds": len(done),
            "n_diverged": sum(r.status == "diverged" for r in group),
            "n_failed": sum(r.status not in ("completed", "diverged") for r in group),
        }
        for quantity in (*QUANTITIES, *ACCURACIES):
            values = [d[quantity] for d in done if d.get(quantity) is not None]
            row[f"{quantity}_mean"] = float(np.mean(values)) if values else None
            row[f"{quantity}_ci95"] = confidence_half_width(values)
        rows.append(row)
    return rows


def trend_verdict(slopes, smallest_effect: float) -> dict:
    """The rule of TREND_RULE for per-seed slopes against the smallest effect of interest.

    Args:
        slopes: one slope per seed.
        smallest_effect: delta > 0, in the slopes' units.

    Returns:
        `slope_mean`, `slope_ci95`, `n_seeds`, `smallest_effect`, `verdict` ("no trend
        larger than delta", "increases by at least delta", "decreases by at least delta",
        "undecided", "no data") and `seeds_needed` (for "undecided": the seeds whose 95%
        interval, at the observed spread, would be narrower than the distance between the
        mean and ±delta; None otherwise or beyond MOST_SEEDS).
    """
    slopes = np.asarray(slopes, dtype=float)
    slopes = slopes[np.isfinite(slopes)]
    mean = float(np.mean(slopes)) if len(slopes) else None
    half = confidence_half_width(slopes)
    verdict, needed = ("undecided" if len(slopes) else "no data"), None
    if half is not None:
        low, high = mean - half, mean + half
        if -smallest_effect < low and high < smallest_effect:
            verdict = "no trend larger than delta"
        elif low > smallest_effect:
            verdict = "increases by at least delta"
        elif high < -smallest_effect:
            verdict = "decreases by at least delta"
        else:
            needed = seeds_to_decide(np.std(slopes, ddof=1), abs(abs(mean) - smallest_effect))
    return {
        "slope_mean": mean,
        "slope_ci95": half,
        "n_seeds": len(slopes),
        "smallest_effect": float(smallest_effect),
        "verdict": verdict,
        "seeds_needed": needed,
    }


def seeds_to_decide(spread: float, margin: float) -> int | None:
    """The fewest seeds n whose 95% half width `t_{0.975, n-1} * spread / sqrt(n)` is below
    `margin`; None when more than MOST_SEEDS would be needed."""
    from scipy import stats as scipy_stats  # a slow import: not at `reproduce.py --help`

    for n in range(2, MOST_SEEDS + 1):
        if float(scipy_stats.t.ppf(0.975, n - 1)) * spread / np.sqrt(n) < margin:
            return n
    return None


def describe_trend(result: dict) -> str:
    """The verdict in words, with delta and, for "undecided", the seeds it would need."""
    delta = render_number(result.get("smallest_effect"))
    verdict = result["verdict"].replace("delta", delta)
    if result["verdict"] == "undecided":
        needed = result.get("seeds_needed")
        more = f"about {needed} seeds" if needed else f"more than {MOST_SEEDS} seeds"
        verdict += f": need {more} (the CI straddles ±{delta})"
    return verdict


def render_number(value) -> str:
    return "-" if value is None else f"{value:.2g}"


def loglog_slope(x, y) -> float:
    """Least-squares slope of `log y` against `log x` (the exponent of a power law)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.any(x <= 0) or np.any(~(y > 0)):
        raise ValueError(f"a log-log slope needs >= 2 positive points. Received: x={x}, y={y}")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def slopes_by_seed(runs, key: str, value) -> np.ndarray:
    """The log-log slope of `value(run)` against config[`key`], fitted separately per seed
    over that seed's completed runs (seeds with fewer than two points are skipped)."""
    by_seed = {}
    for run in runs:
        if run.completed:
            by_seed.setdefault(run.seed, []).append((float(run.config[key]), value(run)))
    slopes = []
    for points in by_seed.values():
        points = [p for p in points if p[1] is not None and p[1] > 0]
        if len(points) >= 2:
            slopes.append(loglog_slope(*zip(*sorted(points))))
    return np.array(slopes)


def node_mean(quantity: str, power: float = 1.0):
    """`run -> mean over the first layer's nodes of quantity ** power`."""
    return lambda run: float(np.mean(np.asarray(run.nodes[quantity]) ** power))


def paper_slopes(table: str = "table1") -> dict:
    """Log-log slopes of the paper's columns against amplitude (Table I) or SNR (Table II)."""
    reference = paper.TABLE1 if table == "table1" else paper.TABLE2
    keys = list(reference)
    columns = reference[keys[0]].keys()
    return {c: loglog_slope(keys, [reference[k][c] for k in keys]) for c in columns}


def slope_matches(slopes, expected: float) -> bool:
    """The slope rule of VERDICT_RULES."""
    slopes = np.asarray(slopes, float)
    if len(slopes) == 0:
        return False
    half_width = confidence_half_width(slopes) or 0.0
    return abs(float(np.mean(slopes)) - expected) <= max(half_width, SLOPE_TOLERANCE)


def magnitude_matches(measured, expected) -> bool:
    """The magnitude rule of VERDICT_RULES: every row within MAGNITUDE_FACTOR of the paper."""
    measured, expected = np.asarray(measured, float), np.asarray(expected, float)
    if len(measured) == 0 or np.any(~(measured > 0)) or np.any(~(expected > 0)):
        return False
    return bool(np.all(np.abs(np.log(measured / expected)) <= np.log(MAGNITUDE_FACTOR)))


def verdict(slopes, expected_slope, measured=None, expected=None, derived=False) -> str:
    """The verdict of VERDICT_RULES for one quantity against one paper column.

    Args:
        slopes: the measured per-seed log-log slopes.
        expected_slope: the paper's slope.
        measured, expected: the measured means and the paper's values, row by row (None:
            magnitude not compared, the verdict is then about the slope alone).
        derived: the quantity follows from another one by arithmetic.
    """
    if len(slopes) == 0:
        return "no data"
    slope = slope_matches(slopes, expected_slope)
    if measured is None:
        text = "slope matches" if slope else "slope differs"
    else:
        magnitude = magnitude_matches(measured, expected)
        text = {
            (True, True): "reproduced",
            (True, False): "slope only",
            (False, True): "magnitude only",
            (False, False): "not reproduced",
        }[(slope, magnitude)]
    return f"derived; {text}" if derived else text
