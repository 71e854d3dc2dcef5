"""Fig. 1 of the paper, drawn from `ridge.fig1_geometry()`: this module only draws.

Matplotlib's object API with the Agg canvas (no pyplot state); the PNG is written to a temp
file beside the target and moved into place with `os.replace`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from keras_bnreg.files import atomic_path
from keras_bnreg.theory import ridge


def plot_fig1(path, geometry=None):
    """Fig. 1: loss contours, w*, the L2 path as alpha grows, and the alpha BN would set.

    The loss is `(w - w*)^T H (w - w*) / 2` with `H = R` (squared error of a linear unit on
    data with second moment R). The path `w_r(alpha) = Q (Lambda + alpha I)^-1 Lambda Q^T w*`
    runs from w* (alpha -> 0) to 0, shrinking the small-eigenvalue direction first; the
    square marks `w_r` at `alpha_BN = sqrt(w*^T R w*)`.

    Args:
        path: the PNG to write (its directory is created).
        geometry: a `ridge.Fig1Geometry` (default: `ridge.fig1_geometry()`).

    Returns:
        `path`.
    """
    geometry = ridge.fig1_geometry() if geometry is None else geometry
    figure = Figure(figsize=(7.5, 6.0), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()

    reach = 0.5 * np.linalg.norm(geometry.w_star)  # half-length of the eigen-direction lines
    axes_ends = [
        geometry.w_star + sign * reach * v for v in geometry.eigenvectors.T for sign in (-1, 1)
    ]
    points = np.vstack([geometry.path, geometry.w_star, np.zeros(2), *axes_ends])
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.12 * max(high - low)
    low, high = low - margin, high + margin
    grid = np.stack(
        np.meshgrid(np.linspace(low[0], high[0], 240), np.linspace(low[1], high[1], 240)),
        axis=-1,
    )
    loss = ridge.quadratic_loss(grid, geometry.hessian, geometry.w_star)
    levels = np.geomspace(max(loss.max(), 1e-12) * 1e-3, loss.max(), 12)
    axis.contour(grid[..., 0], grid[..., 1], loss, levels=levels, colors="0.65", linewidths=0.7)

    for index, (eigenvalue, vector) in enumerate(
        zip(geometry.eigenvalues, geometry.eigenvectors.T), start=1
    ):
        ends = geometry.w_star + np.outer([-1.0, 1.0], reach * vector)
        axis.plot(*ends.T, color="0.4", linestyle="--", linewidth=0.9)
        axis.annotate(
            f"q_{index} (lambda_{index} = {eigenvalue:g})",
            ends[1],
            fontsize=8,
            color="0.3",
            ha="right" if vector[0] > 0 else "left",
            va="bottom",
        )

    segments = np.stack([geometry.path[:-1], geometry.path[1:]], axis=1)
    log_alphas = np.log10(geometry.alphas)
    norm = Normalize(log_alphas.min(), log_alphas.max())
    line = LineCollection(segments, cmap="viridis", norm=norm, linewidth=2.5)
    line.set_array(log_alphas[:-1])
    axis.add_collection(line)
    figure.colorbar(line, ax=axis, shrink=0.7, label="log10 alpha (L2 rate)")

    limit = geometry.hessian @ geometry.w_star
    limit *= 0.5 * np.linalg.norm(geometry.w_star) / np.linalg.norm(limit)
    axis.plot([0, limit[0]], [0, limit[1]], ":", color="tab:purple", label="limit direction H w*")
    axis.plot(*geometry.w_star, "k*", markersize=13, label="w* (alpha = 0)")
    axis.plot(0, 0, "ko", markersize=4)
    factors = ridge.shrinkage_factors(geometry.eigenvalues, geometry.alpha_bn)
    axis.plot(
        *geometry.w_at_alpha_bn,
        "s",
        color="tab:red",
        markersize=9,
        label=(
            f"alpha_BN = sqrt(w*^T R w*) = {geometry.alpha_bn:.2f}: "
            f"q_1 x {factors[0]:.2f}, q_2 x {factors[1]:.2f}"
        ),
    )
    axis.set(
        xlabel="w_1",
        ylabel="w_2",
        aspect="equal",
        xlim=(low[0], high[0]),
        ylim=(low[1], high[1]),
        title="Fig. 1: L2 path w_r = Q (Lambda + alpha I)^-1 Lambda Q^T w*",
    )
    axis.legend(fontsize=8, loc="best")
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=110)
    return path
