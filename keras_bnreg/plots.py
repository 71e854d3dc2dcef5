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

MEASURED = {"color": "tab:blue", "marker": "o", "capsize": 3}
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


def _panel(axis, x, rows, column, paper_values=None, paper_label="paper", log_x=True):
    mean, std = _series(rows, f"{column}_mean"), _series(rows, f"{column}_std")
    axis.errorbar(
        x, mean, yerr=np.nan_to_num(std), label="measured (mean ± std over seeds)", **MEASURED
    )
    if paper_values is not None and np.any(np.isfinite(paper_values)):
        axis.plot(x, paper_values, label=paper_label, **PAPER)
    axis.set_yscale("log")
    if log_x:
        _log_ticks(axis, x)
    axis.grid(True, which="both", alpha=0.3)


def plot_table1(rows, path):
    """Norms and alpha against amplitude (log-log), measured beside the paper's Table I."""
    _require(
        rows,
        [
            "amplitude",
            "l1_mean",
            "l2_mean",
            "alpha_mean",
            "paper_l1",
            "paper_l2",
            "paper_alpha_1e8",
        ],
    )
    x = _series(rows, "amplitude")
    panels = [
        ("l1", "L1 norm of w (raw kernel)", _series(rows, "paper_l1")),
        ("l2", "L2 norm of w (raw kernel)", _series(rows, "paper_l2")),
        ("l2_bn", "L2 norm of w_bn = gamma w / sqrt(var + eps)", None),
        ("alpha", "alpha = sqrt(w^T R w)", _series(rows, "paper_alpha_1e8") * 1e-8),
        ("alpha_centered", "alpha, centred: sqrt(w^T Cov w)", None),
        ("alpha_moving", "alpha from BN's moving statistics", None),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(14, 8), layout="constrained")
    for axis, (column, title, paper_values) in zip(axes.flat, panels):
        label = "paper (printed 'x 1e8', drawn x 1e-8)" if column == "alpha" else "paper"
        _panel(axis, x, rows, column, paper_values, label)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("data amplitude A (pixels = image / 255 x A)")
    axes.flat[0].legend(fontsize=8)
    axes.flat[3].legend(fontsize=8)
    figure.suptitle("Table I: mean over the hidden nodes against data amplitude")
    _save(figure, path)


def plot_table2(rows, path):
    """Norms against SNR, measured beside Table II, and the noise term vs Eq. 18-19."""
    _require(rows, ["snr", "l1_mean", "l2_mean", "paper_l1", "paper_l2"])
    x = _series(rows, "snr")
    predictions = [c for c in rows[0] if c.startswith("pred_")]
    figure, axes = plt.subplots(
        1, 3 if predictions else 2, figsize=(15 if predictions else 10, 4.5), layout="constrained"
    )
    for axis, column in zip(axes, ("l1", "l2")):
        _panel(axis, x, rows, column, _series(rows, f"paper_{column}"))
        axis.set_title(f"{column.upper()} norm of w (raw kernel)", fontsize=10)
        axis.set_xlabel("signal-to-noise ratio")
        axis.legend(fontsize=8)
    if predictions:
        axis = axes[2]
        for column, style in zip(predictions, ("o-", "s--", "^:")):
            axis.plot(x, _series(rows, column), style, label=column.removeprefix("pred_"))
        _log_ticks(axis, x)
        axis.set_yscale("log")
        axis.set_xlabel("signal-to-noise ratio")
        axis.set_title("noise term of the squared error (Eq. 16-19)", fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Table II: mean over the hidden nodes against SNR (amplitude 1)")
    _save(figure, path)


def plot_fig2(node_tables, path):
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
    figure.suptitle("Fig. 2: alpha differs from node to node; what each node's alpha is made of")
    _save(figure, path)


def plot_slopes(rows, path, title):
    """Bar chart of fitted log-log slopes (mean ± std over seeds) beside reference values.

    Args:
        rows: dicts with `label`, `slope_mean`, `slope_std` and optionally `paper`.
    """
    _require(rows, ["label", "slope_mean", "slope_std"])
    figure, axis = plt.subplots(figsize=(max(6, 0.8 * len(rows) + 2), 4.5), layout="constrained")
    positions = np.arange(len(rows))
    axis.bar(
        positions,
        _series(rows, "slope_mean"),
        yerr=np.nan_to_num(_series(rows, "slope_std")),
        color="tab:blue",
        capsize=3,
        label="measured (mean ± std over seeds)",
    )
    paper_values = _series(rows, "paper") if "paper" in rows[0] else None
    if paper_values is not None and np.any(np.isfinite(paper_values)):
        axis.scatter(
            positions, paper_values, color="tab:red", marker="s", zorder=3, label="paper (Table I)"
        )
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(positions, [row["label"] for row in rows], rotation=35, ha="right", fontsize=8)
    axis.set_ylabel("log-log slope against amplitude")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    _save(figure, path)


def plot_baseline(rows, path):
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
    _save(figure, path)


def plot_depth(by_depth, path):
    """Mean alpha of each layer against amplitude, one panel per depth."""
    figure, axes = plt.subplots(
        1, len(by_depth), figsize=(5 * len(by_depth), 4.3), layout="constrained", squeeze=False
    )
    for axis, (depth, runs) in zip(axes[0], sorted(by_depth.items())):
        amplitudes = sorted({r.config["amplitude"] for r in runs})
        for layer in runs[0].layers:
            means = [
                np.mean(
                    [
                        np.nanmean(r.layers[layer]["alpha"])
                        for r in runs
                        if r.config["amplitude"] == a
                    ]
                )
                for a in amplitudes
            ]
            axis.plot(amplitudes, means, "o-", label=layer)
        _log_ticks(axis, amplitudes)
        axis.set(
            yscale="log",
            xlabel="data amplitude",
            ylabel="mean alpha over the layer's nodes",
            title=f"{depth} hidden layer{'s' if depth > 1 else ''}",
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    _save(figure, path)
