"""Aggregate run directories into the paper's tables: means, spreads, slopes (no Keras).

A run directory is the train.py contract: config.json, summary.json, history.csv,
nodes.csv. Every table is rebuilt from those files alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_bnreg import files, paper
from keras_bnreg.theory.forms import bn_noise_penalty_equal_eigenvalues

# Per-node quantities of the first hidden layer averaged per run, then across seeds.
QUANTITIES = ("l1", "l2", "l1_bn", "l2_bn", "alpha", "alpha_centered", "alpha_moving")
ACCURACIES = {"train_accuracy": "accuracy", "test_accuracy": "val_accuracy"}


@dataclass(frozen=True)
class Run:
    """One finished (or diverged) run, read back from its directory."""

    name: str
    config: dict
    summary: dict
    nodes: dict  # column -> per-node array (first hidden layer); empty if not completed
    layers: dict = field(default_factory=dict)  # layer name -> its node table (every layer)

    @property
    def completed(self) -> bool:
        return self.summary.get("status") == "completed"


def read_run(run_dir) -> Run:
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    layers = {}
    if summary.get("status") == "completed" and (run_dir / "nodes.csv").is_file():
        layers["hidden1"] = _node_table(run_dir / "nodes.csv")
        for path in sorted(run_dir.glob("nodes_*.csv")):
            layers[path.stem.removeprefix("nodes_")] = _node_table(path)
    return Run(run_dir.name, config, summary, layers.get("hidden1", {}), layers)


def _node_table(path) -> dict:
    rows = files.read_csv(path)
    return {k: np.array([row[k] for row in rows], dtype=float) for k in rows[0]}


def read_runs(runs_dir, prefix="") -> list[Run]:
    """Every run directory under `runs_dir` whose name starts with `prefix` and that has a
    summary.json (runs still in progress or killed before writing one are left out)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [
        read_run(d)
        for d in sorted(runs_dir.iterdir())
        if d.name.startswith(prefix) and (d / "summary.json").is_file()
    ]


def run_means(run: Run) -> dict:
    """Per-run scalars: node means of QUANTITIES and the final accuracies."""
    out = {q: float(np.mean(run.nodes[q])) for q in QUANTITIES}
    final = run.summary.get("final", {})
    out["train_accuracy"] = final.get("accuracy")
    # test_accuracy: scored at the end; runs validated on the test split have it as val_.
    out["test_accuracy"] = final.get("test_accuracy", final.get("val_accuracy"))
    return out


def aggregate(runs, key) -> list[dict]:
    """One row per value of config[`key`]: mean and std across seeds of each run mean.

    Diverged or interrupted runs are counted in `n_diverged` / `n_failed` and never averaged.
    """
    groups = {}
    for run in runs:
        groups.setdefault(run.config[key], []).append(run)
    rows = []
    for value in sorted(groups, key=lambda v: float(v)):
        group = groups[value]
        done = [run_means(r) for r in group if r.completed]
        row = {
            key: value,
            "n_seeds": len(done),
            "n_diverged": sum(r.summary.get("status") == "diverged" for r in group),
            "n_failed": sum(
                r.summary.get("status") not in ("completed", "diverged") for r in group
            ),
        }
        for quantity in (*QUANTITIES, *ACCURACIES):
            values = np.array([d[quantity] for d in done if d[quantity] is not None], float)
            row[f"{quantity}_mean"] = float(values.mean()) if len(values) else None
            row[f"{quantity}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        rows.append(row)
    return rows


def with_paper_columns(rows, table) -> list[dict]:
    """Add `paper_l1`, `paper_l2` (and `paper_alpha_1e8` for Table I) to each row."""
    reference, key = (paper.TABLE1, "amplitude") if table == "table1" else (paper.TABLE2, "snr")
    out = []
    for row in rows:
        ref = reference.get(float(row[key]), {})
        extra = {"paper_l1": ref.get("l1"), "paper_l2": ref.get("l2")}
        if table == "table1":
            extra["paper_alpha_1e8"] = ref.get("alpha_1e8")
        out.append({**row, **extra})
    return out


def loglog_slope(x, y) -> float:
    """Least-squares slope of `log y` against `log x` (the exponent of a power law)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError(f"a log-log slope needs >= 2 positive points. Received: x={x}, y={y}")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def slopes_by_seed(runs, key, quantity, value=None) -> np.ndarray:
    """The log-log slope of `quantity` against config[`key`], fitted separately per seed.

    `value(run)` gives the run's number (default: the node mean of `quantity`).
    """
    value = value or (lambda run: run_means(run)[quantity])
    by_seed = {}
    for run in runs:
        if run.completed:
            by_seed.setdefault(run.config["seed"], []).append((run.config[key], value(run)))
    slopes = [
        loglog_slope(*zip(*sorted(points))) for points in by_seed.values() if len(points) >= 2
    ]
    return np.array(slopes)


def paper_slopes() -> dict:
    """Log-log slopes against amplitude of the paper's Table I columns."""
    amplitudes = list(paper.TABLE1)
    return {
        column: loglog_slope(amplitudes, [paper.TABLE1[a][column] for a in amplitudes])
        for column in ("l1", "l2", "alpha_1e8")
    }


def verdict(measured: np.ndarray, expected: float) -> str:
    """`reproduced` if the expected slope lies within measured mean +- 2 std (or 0.1 when
    the spread is smaller) and has the same sign; `partly` if only the sign agrees;
    `not reproduced` otherwise."""
    if len(measured) == 0:
        return "no data"
    mean = float(np.mean(measured))
    tolerance = max(2 * float(np.std(measured, ddof=1)) if len(measured) > 1 else 0.0, 0.1)
    if abs(mean - expected) <= tolerance:
        return "reproduced"
    if np.sign(mean) == np.sign(expected) and abs(mean) > tolerance:
        return "partly"
    return "not reproduced"


def noise_term_predictions(run: Run) -> dict:
    """The paper's noise term for one noisy run, measured and predicted (Eq. 16-19).

    With input noise of variance sigma^2 and the BN weight w_bn, the noise adds
    `sigma^2 ||w_bn||^2` to the squared error (Eq. 16 applied to w_bn):
    - `measured`: `sigma^2 * mean_j ||w_bn_j||^2` with the trained effective weights;
    - `eq18`: `sigma^2 * mean_j gamma_j^2 ||w_j||^2 / (w_j^T R_n w_j)`, `R_n` the noisy
      inputs' second moment (so `w_j^T R_n w_j = alpha_j^2` measured on the noisy data);
    - `eq19`: `sigma^2 * mean_j gamma_j^2 / (lambda + sigma^2)` with all eigenvalues of the
      clean R set equal to their mean `lambda` (the paper's assumption); `lambda + sigma^2`
      is the measured mean eigenvalue of the noisy inputs' R_n (`r_mean_eigenvalue`).
    """
    sigma = float(run.summary["data"]["noise_sigma"])
    nodes = run.nodes
    # Eq. 18 per node is Eq. 19 with lambda = the clean R's Rayleigh quotient along w_j, here
    # w_j^T R_n w_j / ||w_j||^2 - sigma^2 = alpha_j^2 / l2_j^2 - sigma^2 (clipped at 0: on a
    # fixed noisy set the estimate can fall a rounding hair below).
    rayleigh = np.maximum(nodes["alpha"] ** 2 / nodes["l2"] ** 2 - sigma**2, 0.0)
    mean_eigenvalue = float(run.summary["data"]["r_mean_eigenvalue"]) - sigma**2
    return {
        "measured": sigma**2 * float(np.mean(nodes["l2_bn"] ** 2)),
        "eq18": float(np.mean(bn_noise_penalty_equal_eigenvalues(rayleigh, sigma, nodes["gamma"]))),
        "eq19": float(
            np.mean(bn_noise_penalty_equal_eigenvalues(mean_eigenvalue, sigma, nodes["gamma"]))
        ),
    }
