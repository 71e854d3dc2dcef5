"""Figures: the paper's numbers and the measured ones on the same axes (matplotlib, Agg).

Every function takes data (rows or per-node arrays), draws, and writes a PNG atomically.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from keras_bnreg.files import atomic_path  # noqa: E402

PAPER = {"color": "tab:red", "marker": "s", "linestyle": "--"}


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


def _require(rows, columns):
    missing = [c for c in columns if not rows or c not in rows[0]]
    if missing:
        raise ValueError(f"rows lack the columns {missing}")


def _series(rows, column):
    values = [row.get(column) for row in rows]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _save(figure, path):
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(figure)


def _log_ticks(axis, x):
    """Log x axis with ticks at the data's own values, printed plainly (2, 3, 0.5, 100)."""
    axis.set_xscale("log")
    axis.set_xticks(x, [f"{v:g}" for v in x])
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _normalised(rows, column):
    """A column's means and 95% CI half widths divided by its first finite mean."""
    mean, half = _series(rows, f"{column}_mean"), _series(rows, f"{column}_ci95")
    finite = mean[np.isfinite(mean) & (mean > 0)]
    first = finite[0] if len(finite) else np.nan
    return mean / first, half / first


def _paper_normalised(values):
    values = np.asarray(values, float)
    return values / values[np.isfinite(values)][0]


def _draw_column(axis, x, rows, series, paper_values, normalise):
    """Measured series (with 95% CI bars) and the paper's, each optionally divided by its
    first row so that slopes compare by eye on log-log axes."""
    for column, label, style in series:
        if not any(row.get(f"{column}_mean") is not None for row in rows):
            continue
        if normalise:
            mean, half = _normalised(rows, column)
        else:
            mean, half = _series(rows, f"{column}_mean"), _series(rows, f"{column}_ci95")
        axis.errorbar(x, mean, yerr=np.nan_to_num(half), label=label, capsize=3, **style)
    if paper_values is not None and np.any(np.isfinite(paper_values)):
        values = _paper_normalised(paper_values) if normalise else paper_values
        axis.plot(x, values, label="paper", **PAPER)
    axis.set_yscale("log")
    _log_ticks(axis, x)
    axis.grid(True, which="both", alpha=0.3)


RAW = {"color": "tab:blue", "marker": "o"}
EFFECTIVE = {"color": "tab:green", "marker": "^"}
OTHER = {"color": "tab:purple", "marker": "v"}
CI_NOTE = "bars: 95% CI over seeds"


def _table_figure(x, rows, columns, xlabel, title, caption, path, extra=0):
    """Top row: each series divided by its first row (slopes); bottom row: the values.
    `extra` more columns of axes are left for the caller; returns (figure, axes) unsaved
    when there are any."""
    width = len(columns) + extra
    figure, axes = plt.subplots(
        2, width, figsize=(5 * width, 8.5), layout="constrained", squeeze=False
    )
    for index, (name, series, paper_values) in enumerate(columns):
        for row_index, normalise in enumerate((True, False)):
            axis = axes[row_index, index]
            _draw_column(axis, x, rows, series, paper_values, normalise)
            axis.set_xlabel(xlabel)
            axis.set_title(
                f"{name}: " + ("divided by its first row" if normalise else "values"),
                fontsize=10,
            )
            axis.legend(fontsize=7)
    figure.suptitle(f"{title}\n{caption}; {CI_NOTE}", fontsize=11)
    if extra:
        return figure, axes
    _save(figure, path)
    return None


def plot_table1(rows, path, caption=""):
    """Table I (log-log): measured norms and alpha beside the paper's, normalised to the
    first amplitude (top: slopes compare by eye) and as values (bottom: magnitudes)."""
    _require(rows, ["amplitude", "l1_mean", "l2_mean", "alpha_mean", "paper_l1", "paper_l2"])
    x = _series(rows, "amplitude")
    columns = [
        (
            "L1",
            [("l1", "L1 of w (raw)", RAW), ("l1_bn", "L1 of w_bn (effective)", EFFECTIVE)],
            _series(rows, "paper_l1"),
        ),
        (
            "L2",
            [("l2", "L2 of w (raw)", RAW), ("l2_bn", "L2 of w_bn (effective)", EFFECTIVE)],
            _series(rows, "paper_l2"),
        ),
        (
            "alpha",
            [
                ("alpha", "alpha = sqrt(w^T R w)", RAW),
                ("alpha_centered", "alpha, centred", EFFECTIVE),
                ("alpha_moving", "alpha, BN moving statistics", OTHER),
            ],
            _series(rows, "paper_alpha_1e8") * 1e-8,
        ),
    ]
    _table_figure(
        x,
        rows,
        columns,
        "data amplitude A (pixels = image / 255 x A)",
        "Table I: mean over the hidden nodes against amplitude (paper's alpha read x 1e-8)",
        caption,
        path,
    )


def plot_table2(rows, path, caption=""):
    """Table II: norms against SNR beside the paper's (normalised and as values)."""
    _require(rows, ["snr", "l1_mean", "l2_mean", "paper_l1", "paper_l2"])
    x = _series(rows, "snr")
    columns = [
        (
            name.upper(),
            [
                (name, f"{name.upper()} of w (raw)", RAW),
                (f"{name}_bn", f"{name.upper()} of w_bn (effective)", EFFECTIVE),
            ],
            _series(rows, f"paper_{name}"),
        )
        for name in ("l1", "l2")
    ]
    predictions = [c for c in rows[0] if c.startswith("pred_")]
    figure, axes = _table_figure(
        x,
        rows,
        columns,
        "signal-to-noise ratio",
        "Table II: mean over the hidden nodes against SNR (amplitude 1)",
        caption,
        path,
        extra=1,
    )
    axis = axes[0, -1]
    for column, style in zip(predictions, ("o-", "s--", "^:")):
        axis.plot(x, _series(rows, column), style, label=column.removeprefix("pred_"))
    _log_ticks(axis, x)
    axis.set(yscale="log", xlabel="signal-to-noise ratio")
    axis.set_title("noise term of the squared error (Eq. 16-19)", fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    axes[1, -1].axis("off")
    _save(figure, path)


def plot_fig2(node_tables, path, caption=""):
    """Per-node alpha by amplitude (sorted, histogram) and its two factors, like Fig. 2.

    Args:
        node_tables: amplitude -> per-node arrays with `alpha`, `alpha_centered`, `l2`.
    """
    if not node_tables:
        raise ValueError("plot_fig2 needs at least one amplitude's node table")
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(node_tables)))
    figure, axes = plt.subplots(2, 2, figsize=(13, 9), layout="constrained")
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
    _save(figure, path)


def plot_slopes(rows, path, title):
    """Bar chart of fitted log-log slopes (mean, 95% CI over seeds) beside the paper's.

    Args:
        rows: dicts with `quantity`, `slope_mean`, `slope_ci95` and `paper_slope`.
    """
    _require(rows, ["quantity", "slope_mean", "slope_ci95", "paper_slope"])
    figure, axis = plt.subplots(figsize=(max(6, 0.8 * len(rows) + 2), 4.8), layout="constrained")
    positions = np.arange(len(rows))
    axis.bar(
        positions,
        _series(rows, "slope_mean"),
        yerr=np.nan_to_num(_series(rows, "slope_ci95")),
        color="tab:blue",
        capsize=3,
        label="measured (mean, 95% CI over seeds)",
    )
    axis.scatter(
        positions,
        _series(rows, "paper_slope"),
        color="tab:red",
        marker="s",
        zorder=3,
        label="paper (its column's slope)",
    )
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(
        positions, [row["quantity"] for row in rows], rotation=35, ha="right", fontsize=8
    )
    axis.set_ylabel("log-log slope against amplitude")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    _save(figure, path)


def plot_baseline(rows, path, caption=""):
    """Validation/test accuracy against the L2 rate per amplitude, BN as a reference line;
    and BN's alpha range per amplitude."""
    _require(rows, ["amplitude", "model", "l2_rate", "val_accuracy", "test_accuracy"])
    amplitudes = sorted({r["amplitude"] for r in rows})
    colors = dict(zip(amplitudes, plt.cm.viridis(np.linspace(0, 0.85, len(amplitudes)))))
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    for amplitude in amplitudes:
        l2_rows = [r for r in rows if r["amplitude"] == amplitude and r["l2_rate"] is not None]
        bn_rows = [r for r in rows if r["amplitude"] == amplitude and r["l2_rate"] is None]
        color = colors[amplitude]
        if l2_rows:
            rates = [r["l2_rate"] for r in l2_rows]
            left.plot(
                rates,
                [r["val_accuracy"] for r in l2_rows],
                "o-",
                color=color,
                label=f"A={amplitude:g}, no BN: validation",
            )
            left.plot(rates, [r["test_accuracy"] for r in l2_rows], "x:", color=color)
        for row in bn_rows:
            left.axhline(
                row["test_accuracy"],
                color=color,
                linestyle="--",
                linewidth=1,
                label=f"A={amplitude:g}, BN: test",
            )
            right.errorbar(
                [amplitude],
                [row["alpha_mean"]],
                yerr=[
                    [row["alpha_mean"] - row["alpha_p10"]],
                    [row["alpha_p90"] - row["alpha_mean"]],
                ],
                fmt="o",
                color=color,
                capsize=4,
            )
    left.set(
        xscale="log",
        xlabel="explicit L2 rate (no BN)",
        ylabel="accuracy",
        title="no BN, L2 over a grid (o validation, x test) vs BN (dashed, test)",
    )
    left.legend(fontsize=7)
    left.grid(True, which="both", alpha=0.3)
    right.set(
        xlabel="data amplitude",
        ylabel="alpha = sqrt(w^T R w)",
        yscale="log",
        title="BN's per-node alpha (mean, 10-90% of nodes)",
    )
    right.grid(True, which="both", alpha=0.3)
    figure.suptitle(caption, fontsize=10)
    _save(figure, path)


def plot_depth(rows, amplitudes, path, caption=""):
    """Mean alpha of each layer against amplitude, one panel per depth.

    Args:
        rows: depth.analyse's rows (`depth`, `layer`, `alpha_at_<amplitude>`).
        amplitudes: the amplitudes the rows hold.
    """
    depths = sorted({row["depth"] for row in rows})
    figure, axes = plt.subplots(
        1, len(depths), figsize=(5 * len(depths), 4.6), layout="constrained", squeeze=False
    )
    for axis, depth in zip(axes[0], depths):
        for row in (r for r in rows if r["depth"] == depth):
            means = [row[f"alpha_at_{a:g}"] for a in amplitudes]
            axis.plot(amplitudes, means, "o-", label=row["layer"])
        _log_ticks(axis, amplitudes)
        axis.set(
            yscale="log",
            xlabel="data amplitude",
            ylabel="mean alpha over the layer's nodes",
            title=f"{depth} hidden layer{'s' if depth > 1 else ''}",
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(caption, fontsize=10)
    _save(figure, path)
