"""Ablations: what explains the numbers. (a) BN epsilon, (b) optimizer, (c) init scale over
the amplitude sweep; (d) which measured quantity scales like the paper's Table I (Table I's
runs, at the end and over training); (e) amplitude a with epsilon e equals amplitude 1 with
epsilon e / a^2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import files, paper, render
from keras_bnreg.studies import stats, table1

NAME = "ablations"
DESCRIPTION = "what explains the numbers: epsilon, optimizer, init, equivalence"
IN_ALL = True
SEEDS = "ablation_seeds"
USES = (table1.NAME,)  # its runs at these settings: the epsilon-1e-3 group and (d)
FIGURES = ("ablation_d.png",)
EPSILONS = (1e-5, 1e-3, 1e-1)  # (a); 1e-3 is Keras's default and Table I's runs
SMALL_INIT = 1e-4  # (c)
EQUIVALENCE_AMPLITUDES = (2.0, 3.0, 4.0)  # (e)
EQUIVALENCE_EPSILON = 1e-3

# (a)-(c): role group -> label; Table I's runs are the epsilon-1e-3 group.
GROUPS = {
    **{f"epsilon {e:g}": f"Adam 0.1, epsilon {e:g}, init 0.01" for e in EPSILONS if e != 1e-3},
    "sgd": "SGD 0.1, epsilon 1e-3, init 0.01",
    f"init {SMALL_INIT:g}": f"Adam 0.1, epsilon 1e-3, init {SMALL_INIT:g}",
}
COMPARED = [q for q in table1.QUANTITIES if q[0].startswith(("L2 of", "alpha ="))]


def configs(settings) -> list:
    """(a)-(c) over amplitude and seed, then (e) (Table I's runs come with `USES`)."""
    out = []
    for a in paper.TABLE1_AMPLITUDES:
        for s in range(settings.seeds):
            for epsilon in EPSILONS:
                if epsilon != 1e-3:
                    out.append(
                        settings.config(
                            f"abl_eps{epsilon:g}_amp{a:g}_seed{s}",
                            NAME,
                            {"group": f"epsilon {epsilon:g}"},
                            amplitude=a,
                            seed=s,
                            bn_epsilon=(epsilon,),
                        )
                    )
            out.append(
                settings.config(
                    f"abl_sgd_amp{a:g}_seed{s}",
                    NAME,
                    {"group": "sgd"},
                    amplitude=a,
                    seed=s,
                    optimizer="sgd",
                )
            )
            out.append(
                settings.config(
                    f"abl_init{SMALL_INIT:g}_amp{a:g}_seed{s}",
                    NAME,
                    {"group": f"init {SMALL_INIT:g}"},
                    amplitude=a,
                    seed=s,
                    init_std=SMALL_INIT,
                )
            )
    return out + equivalence(settings)


def equivalence(settings, epsilon=EQUIVALENCE_EPSILON, amplitudes=EQUIVALENCE_AMPLITUDES):
    """(e) amplitude a with first-layer epsilon e == amplitude 1 with e / a^2 (seed 0).

    Per amplitude a: `abl_equiv_amp<a>` (amplitude a, epsilons (e, e)) and
    `abl_equiv_amp<a>_as_amp1` (amplitude 1, epsilons (e / a^2, e)); plus the
    non-equivalent reference `abl_equiv_amp1` (amplitude 1, epsilons (e, e)).
    The kernels are compared, so the models are kept.
    """
    rest = (epsilon,) * len(settings.hidden)

    def config(name, role, **changes):
        return settings.config(name, NAME, {"group": "equivalence", **role}, True, **changes)

    out = [
        config("abl_equiv_amp1", {"pair": "reference"}, amplitude=1.0, bn_epsilon=(epsilon, *rest))
    ]
    for a in amplitudes:
        out.append(
            config(
                f"abl_equiv_amp{a:g}",
                {"pair": "scaled", "amplitude": a},
                amplitude=a,
                bn_epsilon=(epsilon, *rest),
            )
        )
        out.append(
            config(
                f"abl_equiv_amp{a:g}_as_amp1",
                {"pair": "equivalent", "amplitude": a},
                amplitude=1.0,
                bn_epsilon=(epsilon / a**2, *rest),
            )
        )
    return out


def analyse(runs, out) -> dict[str, list[dict]]:
    """`ablations`: (a)-(c), `setting_rows`; `ablation_d`: Table I's slope rows at the end of
    training; `ablation_d_over_training`: `history_slopes`; `ablation_e`:
    `equivalence_rows` (from the saved models under `out`)."""
    table1_runs = [r for r in runs if r.study == table1.NAME and r.completed]
    histories = {}
    for run in table1_runs:
        path = Path(out) / "runs" / run.name / "history.csv"
        if path.is_file():
            histories[run.name] = files.read_csv(path)
    return {
        "ablations": setting_rows(runs),
        "ablation_d": table1.slope_rows(table1_runs) if table1_runs else [],
        "ablation_d_over_training": history_slopes(table1_runs, histories),
        "ablation_e": equivalence_rows(runs, Path(out) / "models"),
    }


def setting_rows(runs) -> list[dict]:
    """(a)-(c): slope rows (table1.slope_rows) per setting, Table I's runs first."""
    groups = [("Adam 0.1, epsilon 1e-3, init 0.01", [r for r in runs if r.study == table1.NAME])]
    groups += [
        (label, [r for r in runs if r.study == NAME and r.role.get("group") == group])
        for group, label in GROUPS.items()
    ]
    rows = []
    for label, group in groups:
        if group:
            rows += [{"setting": label, **row} for row in table1.slope_rows(group, COMPARED)]
    return rows


def history_slopes(runs, histories: dict) -> list[dict]:
    """(d) over training: per epoch, per-seed slopes of the node means in history.csv.

    Args:
        runs: Table I's runs.
        histories: run name -> history.csv rows.
    """
    epochs = max((len(h) for h in histories.values()), default=0)
    rows = []
    for epoch in sorted({1, 2, max(1, epochs // 2), epochs} - {0}):
        if epoch > epochs:
            continue
        row = {"epoch": epoch}
        usable = [r for r in runs if len(histories.get(r.name, ())) >= epoch]
        for column in ("l2_mean", "l2_bn_mean", "alpha_mean"):

            def value(run, column=column, epoch=epoch):
                return histories[run.name][epoch - 1].get(column)

            slopes = stats.slopes_by_seed(usable, "amplitude", value)
            row[f"{column}_slope"] = float(np.mean(slopes)) if len(slopes) else None
            row[f"{column}_slope_ci95"] = stats.confidence_half_width(slopes)
        rows.append(row)
    return rows


def first_kernel(path) -> np.ndarray:
    """The first Dense layer's kernel of a saved model (float64)."""
    import keras  # only to read saved models

    from keras_bnreg.models import dense_bn_pairs

    model = keras.models.load_model(path)
    return np.asarray(dense_bn_pairs(model)[0].layer.kernel.numpy(), dtype=np.float64)


def equivalence_rows(runs, models_dir) -> list[dict]:
    """(e): max abs kernel differences, scaled vs equivalent and scaled vs reference."""
    pairs = {}
    for run in runs:
        if run.study == NAME and run.role.get("group") == "equivalence" and run.completed:
            path = Path(models_dir) / f"{run.name}.keras"
            if path.is_file():
                key = run.role.get("amplitude", 1.0)
                pairs.setdefault(run.role["pair"], {})[key] = path
    reference = pairs.get("reference", {}).get(1.0)
    rows = []
    for amplitude, scaled in sorted(pairs.get("scaled", {}).items()):
        equivalent = pairs.get("equivalent", {}).get(amplitude)
        if reference is None or equivalent is None:
            continue
        kernel = first_kernel(scaled)
        rows.append(
            {
                "amplitude": amplitude,
                "equivalent_epsilon": EQUIVALENCE_EPSILON / amplitude**2,
                "diff_to_equivalent": float(np.max(np.abs(kernel - first_kernel(equivalent)))),
                "diff_to_reference": float(np.max(np.abs(kernel - first_kernel(reference)))),
                "max_abs_kernel": float(np.max(np.abs(kernel))),
            }
        )
    return rows


def section(runs, out) -> tuple[str, list[Path]]:
    out = Path(out)
    table1_runs = [r for r in runs if r.study == table1.NAME and r.completed]
    tables = analyse(runs, out)
    parts, written = [], []
    rows = tables["ablations"]
    if len({r["setting"] for r in rows}) > 1:
        written += render.write_table(out, "ablations", rows, _settings_markdown(rows))
        parts += [
            "### (a)-(c) epsilon, optimizer, init scale",
            "",
            "Slope against amplitude (2..6) of the node means, per setting (verdict rules "
            "as above):",
            "",
            _settings_markdown(rows),
            "",
        ]
    if table1_runs:
        plot_slopes(
            tables["ablation_d"],
            out / "ablation_d.png",
            "(d) slopes against amplitude at the end of training; " + render.caption(table1_runs),
        )
        written.append(out / "ablation_d.png")
        parts += [_ablation_d_markdown(tables["ablation_d_over_training"]), ""]
    if tables["ablation_e"]:
        parts.append(_equivalence_markdown(tables["ablation_e"]))
    if not parts:
        return "", []
    text = [
        "## Ablations: what explains the numbers",
        "",
        "With BN right after a Dense layer the loss is invariant to the input's scale except "
        "through BN's epsilon, and Adam's steps ignore the gradient's scale. These "
        "measurements test what that implies.",
        "",
        *parts,
    ]
    return "\n".join(text).rstrip() + "\n", written


def _settings_markdown(rows) -> str:
    return render.markdown_table(
        ["setting", "quantity", "measured slope (95% CI)", "paper", "verdict"],
        [
            [
                r["setting"],
                r["quantity"],
                render.with_interval(r["slope_mean"], r["slope_ci95"], 3),
                f"{r['paper_slope']:+.2f}",
                r["verdict"],
            ]
            for r in rows
        ],
    )


def _ablation_d_markdown(over_training) -> str:
    body = [
        [
            r["epoch"],
            *(
                render.with_interval(r[f"{c}_slope"], r[f"{c}_slope_ci95"], 3)
                for c in ("l2_mean", "l2_bn_mean", "alpha_mean")
            ),
        ]
        for r in over_training
    ]
    return "\n".join(
        [
            "### (d) which measured quantity shows the paper's Table I scaling",
            "",
            "At the end of training: the Table I slope table above. A squared norm's slope is "
            "twice the norm's by arithmetic, and `w^T R w = alpha^2`: such rows are derived, "
            "not further reproductions.",
            "",
            "![ablation d](ablation_d.png)",
            "",
            "Over training (history.csv, node means; slope mean ± 95% CI over seeds):",
            "",
            render.markdown_table(
                ["epoch", "slope of L2 of w", "slope of L2 of w_bn", "slope of alpha"], body
            ),
        ]
    )


def _equivalence_markdown(rows) -> str:
    return "\n".join(
        [
            "### (e) amplitude a with epsilon e equals amplitude 1 with epsilon e / a^2",
            "",
            "Max abs difference of the first layer's kernels after training (seed 0), between "
            "the run at amplitude a (first-layer epsilon 1e-3) and the run at amplitude 1 with "
            "first-layer epsilon 1e-3 / a^2 (equivalent), and the run at amplitude 1 with "
            "epsilon 1e-3 (not equivalent). In training mode BN removes the Dense bias and "
            "divides `a w^T x` by `sqrt(a^2 var + e) = a sqrt(var + e / a^2)`, so the two runs "
            "see the same loss as a function of w (the bias gets no gradient). Only float "
            "rounding differs between the two, and at Adam 0.1 such differences can grow over "
            "training: the table shows how far they got.",
            "",
            render.markdown_table(
                [
                    "a",
                    "equivalent epsilon",
                    "diff to equivalent run",
                    "diff to non-equivalent run",
                    "max abs kernel",
                ],
                [
                    [
                        f"{r['amplitude']:g}",
                        f"{r['equivalent_epsilon']:.3g}",
                        f"{r['diff_to_equivalent']:.3g}",
                        f"{r['diff_to_reference']:.3g}",
                        f"{r['max_abs_kernel']:.3g}",
                    ]
                    for r in rows
                ],
            ),
        ]
    )


def plot_slopes(rows, path, title):
    """Bar chart of fitted log-log slopes (mean, 95% CI over seeds) beside the paper's.

    Args:
        rows: dicts with `quantity`, `slope_mean`, `slope_ci95` and `paper_slope`.
    """
    from keras_bnreg import plots  # matplotlib only when a figure is drawn

    plots.require(rows, ["quantity", "slope_mean", "slope_ci95", "paper_slope"])
    figure, axis = plots.plt.subplots(
        figsize=(max(6, 0.8 * len(rows) + 2), 4.8), layout="constrained"
    )
    positions = np.arange(len(rows))
    axis.bar(
        positions,
        plots.series(rows, "slope_mean"),
        yerr=np.nan_to_num(plots.series(rows, "slope_ci95")),
        color="tab:blue",
        capsize=3,
        label="measured (mean, 95% CI over seeds)",
    )
    axis.scatter(
        positions,
        plots.series(rows, "paper_slope"),
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
    plots.save(figure, path)
