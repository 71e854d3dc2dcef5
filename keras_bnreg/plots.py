"""What the studies' figures share (matplotlib, Agg): styles, series from rows, log axes,
the paper's numbers beside the measured ones, and writing a PNG atomically.

Each study draws its own figures (`keras_bnreg.studies`), importing this module inside the
function that draws, so that importing a study imports no matplotlib.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from keras_bnreg.files import atomic_path  # noqa: E402

PAPER = {"color": "tab:red", "marker": "s", "linestyle": "--"}


def require(rows, columns):
    """Raise ValueError unless the rows have every column."""
    missing = [c for c in columns if not rows or c not in rows[0]]
    if missing:
        raise ValueError(f"rows lack the columns {missing}")


def series(rows, column):
    """A column of the rows as a float array (NaN where missing)."""
    values = [row.get(column) for row in rows]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def save(figure, path):
    """Write `figure` to `path` as a PNG, atomically, and close it."""
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(figure)


def log_ticks(axis, x):
    """Log x axis with ticks at the data's own values, printed plainly (2, 3, 0.5, 100)."""
    axis.set_xscale("log")
    axis.set_xticks(x, [f"{v:g}" for v in x])
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def normalised(rows, column):
    """A column's means and 95% CI half widths divided by its first finite mean."""
    mean, half = series(rows, f"{column}_mean"), series(rows, f"{column}_ci95")
    finite = mean[np.isfinite(mean) & (mean > 0)]
    first = finite[0] if len(finite) else np.nan
    return mean / first, half / first


def _paper_normalised(values):
    values = np.asarray(values, float)
    return values / values[np.isfinite(values)][0]


def draw_column(axis, x, rows, measured, paper_values, normalise):
    """Measured series (`(column, label, style)`, with 95% CI bars) and the paper's, each
    optionally divided by its first row so that slopes compare by eye on log-log axes."""
    for column, label, style in measured:
        if not any(row.get(f"{column}_mean") is not None for row in rows):
            continue
        if normalise:
            mean, half = normalised(rows, column)
        else:
            mean, half = series(rows, f"{column}_mean"), series(rows, f"{column}_ci95")
        axis.errorbar(x, mean, yerr=np.nan_to_num(half), label=label, capsize=3, **style)
    if paper_values is not None and np.any(np.isfinite(paper_values)):
        values = _paper_normalised(paper_values) if normalise else paper_values
        axis.plot(x, values, label="paper", **PAPER)
    axis.set_yscale("log")
    log_ticks(axis, x)
    axis.grid(True, which="both", alpha=0.3)


RAW = {"color": "tab:blue", "marker": "o"}
EFFECTIVE = {"color": "tab:green", "marker": "^"}
OTHER = {"color": "tab:purple", "marker": "v"}
CI_NOTE = "bars: 95% CI over seeds"


def table_figure(x, rows, columns, xlabel, title, caption, path, extra=0):
    """Top row: each series divided by its first row (slopes); bottom row: the values.
    `extra` more columns of axes are left for the caller; returns (figure, axes) unsaved
    when there are any."""
    width = len(columns) + extra
    figure, axes = plt.subplots(
        2, width, figsize=(5 * width, 8.5), layout="constrained", squeeze=False
    )
    for index, (name, measured, paper_values) in enumerate(columns):
        for row_index, normalise in enumerate((True, False)):
            axis = axes[row_index, index]
            draw_column(axis, x, rows, measured, paper_values, normalise)
            axis.set_xlabel(xlabel)
            axis.set_title(
                f"{name}: " + ("divided by its first row" if normalise else "values"),
                fontsize=10,
            )
            axis.legend(fontsize=7)
    figure.suptitle(f"{title}\n{caption}; {CI_NOTE}", fontsize=11)
    if extra:
        return figure, axes
    save(figure, path)
    return None
