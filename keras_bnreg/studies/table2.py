"""Table II: additive Gaussian noise at SNR 100, 10, 1, 0.5 (amplitude 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import paper, render
from keras_bnreg.studies import stats, table1

NAME = "table2"
DESCRIPTION = "Table II: SNR 100, 10, 1, 0.5 at amplitude 1"
IN_ALL = True
SEEDS = "seeds"
USES = ()
FIGURES = ("table2.png",)
ROLE = {"group": "snr sweep"}

QUANTITIES = [q for q in table1.QUANTITIES if q[2] in ("l1", "l2")]


def configs(settings) -> list:
    """Amplitude 1 with Gaussian noise at SNR 100, 10, 1, 0.5, seeds 0..n-1."""
    return [
        settings.config(f"table2_snr{snr:g}_seed{s}", NAME, ROLE, amplitude=1.0, snr=snr, seed=s)
        for snr in paper.TABLE2_SNRS
        for s in range(settings.seeds)
    ]


def noise_term_predictions(run) -> dict:
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
    from keras_bnreg.theory.forms import bn_noise_penalty_equal_eigenvalues  # SciPy: lazily

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


def analyse(runs, out) -> dict[str, list[dict]]:
    """`table2`: one row per SNR; `table2_slopes`: the slope rows (`slope_rows`)."""
    runs = [r for r in runs if r.study == NAME]
    return {"table2": snr_rows(runs), "table2_slopes": slope_rows(runs)}


def snr_rows(runs) -> list[dict]:
    """One row per SNR: measured means with 95% CIs, the paper's row, the noise terms."""
    rows = []
    for row in stats.aggregate(runs, "snr"):
        reference = paper.TABLE2.get(float(row["snr"]), {})
        group = [r for r in runs if r.completed and r.config["snr"] == row["snr"]]
        predictions = [noise_term_predictions(r) for r in group]
        row = {**row, "paper_l1": reference.get("l1"), "paper_l2": reference.get("l2")}
        for key in ("measured", "eq18", "eq19"):
            row[f"pred_{key}"] = (
                float(np.mean([p[key] for p in predictions])) if predictions else None
            )
        rows.append(row)
    return rows


def slope_rows(runs) -> list[dict]:
    """Slopes against SNR and magnitudes, with the verdict rule of Table I."""
    reference = {c: {s: row[c] for s, row in paper.TABLE2.items()} for c in ("l1", "l2")}
    return table1.slope_rows(runs, QUANTITIES, key="snr", reference=reference)


def markdown(rows) -> str:
    body = [
        [
            f"{float(row['snr']):g}",
            render.number(row["paper_l1"]),
            render.with_interval(row["l1_mean"], row["l1_ci95"]),
            render.with_interval(row["l1_bn_mean"], row["l1_bn_ci95"]),
            render.number(row["paper_l2"]),
            render.with_interval(row["l2_mean"], row["l2_ci95"]),
            render.with_interval(row["l2_bn_mean"], row["l2_bn_ci95"]),
            render.with_interval(row["alpha_mean"], row["alpha_ci95"]),
            render.number(row["pred_measured"]),
            render.number(row["pred_eq18"]),
            render.number(row["pred_eq19"]),
            render.with_interval(row["test_accuracy_mean"], row["test_accuracy_ci95"], 3),
            f"{row['n_seeds']} ({row['n_diverged']} diverged)",
        ]
        for row in rows
    ]
    headers = [
        "SNR",
        "L1 paper",
        "L1 of w",
        "L1 of w_bn",
        "L2 paper",
        "L2 of w",
        "L2 of w_bn",
        "alpha",
        "noise term measured",
        "Eq. 18",
        "Eq. 19",
        "test acc.",
        "seeds",
    ]
    return render.markdown_table(headers, body)


def section(runs, out) -> tuple[str, list[Path]]:
    """Write table2.csv/.md/.png and table2_slopes; return the report section and files."""
    runs = [r for r in runs if r.study == NAME]
    if not runs:
        return "", []
    out = Path(out)
    tables = analyse(runs, out)
    rows, slopes = tables["table2"], tables["table2_slopes"]
    written = render.write_table(out, "table2", rows, markdown(rows))
    written += render.write_table(out, "table2_slopes", slopes, table1.slope_markdown(slopes))
    plot_table2(rows, out / "table2.png", render.caption(runs))
    written.append(out / "table2.png")
    text = [
        "## Table II: additive Gaussian noise by SNR (amplitude 1)",
        "",
        f"Runs: {render.caption(runs)}.",
        "",
        markdown(rows),
        "",
        "Noise term of the squared error: measured `sigma^2 mean ||w_bn||^2`; Eq. 18 "
        "`sigma^2 mean gamma^2 ||w||^2 / (w^T R_n w)`; Eq. 19 with all eigenvalues equal "
        "`sigma^2 mean gamma^2 / (lambda + sigma^2)`.",
        "",
        "![table2](table2.png)",
        "",
        "Log-log slopes against SNR, fitted per seed, and the magnitude against the paper's row:",
        "",
        table1.slope_markdown(slopes),
    ]
    return "\n".join(text), written


def plot_table2(rows, path, caption=""):
    """Table II: norms against SNR beside the paper's (normalised and as values)."""
    from keras_bnreg import plots  # matplotlib only when a figure is drawn

    plots.require(rows, ["snr", "l1_mean", "l2_mean", "paper_l1", "paper_l2"])
    x = plots.series(rows, "snr")
    columns = [
        (
            name.upper(),
            [
                (name, f"{name.upper()} of w (raw)", plots.RAW),
                (f"{name}_bn", f"{name.upper()} of w_bn (effective)", plots.EFFECTIVE),
            ],
            plots.series(rows, f"paper_{name}"),
        )
        for name in ("l1", "l2")
    ]
    predictions = [c for c in rows[0] if c.startswith("pred_")]
    figure, axes = plots.table_figure(
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
        axis.plot(x, plots.series(rows, column), style, label=column.removeprefix("pred_"))
    plots.log_ticks(axis, x)
    axis.set(yscale="log", xlabel="signal-to-noise ratio")
    axis.set_title("noise term of the squared error (Eq. 16-19)", fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    axes[1, -1].axis("off")
    plots.save(figure, path)
