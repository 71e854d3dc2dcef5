"""The epsilon identity, shown exactly: amplitude a with the first BN's epsilon e is the same
training problem as amplitude 1 with epsilon e / a^2.

With BN in training mode right after the first Dense layer, the Dense output for inputs
`a x` is `a x^T w + b`, and BN returns
`(a x^T w - a m) / sqrt(a^2 v + e) = (x^T w - m) / sqrt(v + e / a^2)` (`m`, `v` the batch
mean and variance of `x^T w`; `b` cancels). The loss, hence every gradient and every Adam
step, is the same function of the weights in both problems: the kernels agree at every
epoch, the moving statistics agree up to the factors `a` (mean) and `a^2` (variance), and
the predictions agree. In float32 the rounding differs from the first step and grows
chaotically at Adam's 0.1, so this study trains each pair in float32 and float64, beside a
non-equivalent control (amplitude 1 with epsilon e), and reports the gaps per epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import files, render

NAME = "identity"
DESCRIPTION = "the epsilon identity: amplitude a, eps e == amplitude 1, eps e/a^2 (float64)"
IN_ALL = True
SEEDS = 1  # every run is seed 0: the pairs differ only in amplitude and epsilon
USES = ()
FIGURES = ("identity.png",)
AMPLITUDES = (2.0, 3.0, 4.0, 6.0)
DTYPES = ("float32", "float64")
EPSILON = 1e-3  # the first BN's epsilon at amplitude a (Keras's default)
EXACT = 1e-8  # verdict rule: float64 pair gaps at most this at every epoch and amplitude
REAL = 1e-2  # ... and the control's gap at least this at the last epoch
VERDICT_RULE = (
    f"**exact**: in float64 the pair's kernels agree to max |A - B| / max |B| <= {EXACT:g} "
    f"at every epoch and amplitude, while the non-equivalent control differs by >= {REAL:g} "
    "at the last epoch; **not shown** otherwise."
)


def configs(settings) -> list:
    """Per dtype: for each a, (amplitude a, eps e) and (amplitude 1, eps e/a^2); and one
    control (amplitude 1, eps e). Seed 0, the first layer's kernel recorded per epoch."""
    out = []
    later = (EPSILON,) * len(settings.hidden)  # the deeper BN layers see identical inputs

    def config(name, role, amplitude, epsilon):
        return settings.config(
            name,
            NAME,
            {"dtype": dtype, **role},
            save_model=True,
            amplitude=amplitude,
            bn_epsilon=(epsilon, *later),
            dtype=dtype,
            record_kernels=True,
            seed=0,
        )

    for dtype in DTYPES:
        out.append(config(f"identity_{dtype}_control", {"pair": "control"}, 1.0, EPSILON))
        for amplitude in AMPLITUDES:
            role = {"amplitude": amplitude}
            out.append(
                config(
                    f"identity_{dtype}_amp{amplitude:g}",
                    {**role, "pair": "scaled"},
                    amplitude,
                    EPSILON,
                )
            )
            out.append(
                config(
                    f"identity_{dtype}_amp{amplitude:g}_as_amp1",
                    {**role, "pair": "equivalent"},
                    1.0,
                    EPSILON / amplitude**2,
                )
            )
    return out


def max_relative_difference(a, b) -> np.ndarray:
    """`max |a - b| / max |b|` over everything but the leading (epoch) axis.

    Args:
        a, b: arrays of the same shape, (epochs, ...).

    Returns:
        One value per leading index (0 where both are 0).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape. Received: {a.shape}, {b.shape}")
    axes = tuple(range(1, a.ndim))
    gap = np.max(np.abs(a - b), axis=axes) if axes else np.abs(a - b)
    scale = np.max(np.abs(b), axis=axes) if axes else np.abs(b)
    return np.where(scale > 0, gap / np.where(scale > 0, scale, 1.0), gap)


def epoch_rows(amplitude, dtype, scaled, equivalent, control) -> list[dict]:
    """`identity.csv` rows of one amplitude and dtype: the kernel gaps at each epoch.

    Args:
        amplitude: a.
        dtype: "float32" or "float64".
        scaled, equivalent, control: the recorded `kernel` arrays (epochs + 1, d, n) of
            (a, e), (1, e/a^2) and (1, e); epoch 0 is the initialisation.
    """
    pair = max_relative_difference(scaled, equivalent)
    versus_control = max_relative_difference(scaled, control)
    return [
        {
            "amplitude": float(amplitude),
            "dtype": dtype,
            "epoch": epoch,
            "pair_max_rel": float(pair[epoch]),
            "control_max_rel": float(versus_control[epoch]),
        }
        for epoch in range(len(pair))
    ]


def final_agreement(amplitude, scaled, equivalent, start_weight) -> dict:
    """At the last epoch: kernels, BN parameters, and the moving statistics with their
    factors, each as a max relative difference.

    BN's statistics see `x^T w + b`, so `moving_mean - b` scales with a. The moving variance
    starts at 1 and after n updates of momentum m keeps `m^n` of that start:
    `moving_variance - m^n` scales with a^2.

    Args:
        amplitude: a.
        scaled, equivalent: the recorded arrays (a mapping name -> (epochs + 1, ...)).
        start_weight: `m^n`, the weight the moving variance still gives its start value 1.
    """
    last = {key: np.asarray(value, dtype=np.float64)[-1:] for key, value in scaled.items()}
    other = {key: np.asarray(value, dtype=np.float64)[-1:] for key, value in equivalent.items()}
    pairs = {
        "kernel": (last["kernel"], other["kernel"]),
        "gamma": (last["gamma"], other["gamma"]),
        "beta": (last["beta"], other["beta"]),
        "moving_mean": (
            last["moving_mean"] - last["bias"],
            amplitude * (other["moving_mean"] - other["bias"]),
        ),
        "moving_variance": (
            last["moving_variance"] - start_weight,
            amplitude**2 * (other["moving_variance"] - start_weight),
        ),
    }
    return {
        f"{name}_max_rel": float(max_relative_difference(mine, theirs)[0])
        for name, (mine, theirs) in pairs.items()
    }


def start_weight(run) -> float:
    """`momentum^updates` of a run's first BN: what its moving variance keeps of its start."""
    n_train = int(run.summary["data"]["n_train"])
    batch_size = int(run.config["batch_size"])
    updates = int(run.summary.get("epochs_completed", 0)) * -(-n_train // batch_size)
    return float(run.config["bn_momentum"]) ** updates


def verdict(rows) -> str:
    """The rule of VERDICT_RULE, on `identity.csv` rows."""
    exact = [r for r in rows if r["dtype"] == "float64"]
    if not exact:
        return "no data"
    last = max(r["epoch"] for r in exact)
    pair_ok = all(r["pair_max_rel"] <= EXACT for r in exact)
    control_ok = all(r["control_max_rel"] >= REAL for r in exact if r["epoch"] == last)
    return "exact" if pair_ok and control_ok else "not shown"


def records(runs, out) -> dict:
    """`(dtype, pair, amplitude) -> kernels.npz arrays` of the completed runs (amplitude
    None for the control)."""
    found = {}
    for run in runs:
        path = Path(out) / "runs" / run.name / "kernels.npz"
        if run.study != NAME or not run.completed or not path.is_file():
            continue
        with np.load(path) as arrays:
            key = (run.role.get("dtype"), run.role.get("pair"), run.role.get("amplitude"))
            found[key] = {name: arrays[name] for name in arrays.files}
    return found


def analyse(runs, out) -> dict[str, list[dict]]:
    """`identity`: the kernel gaps per amplitude, dtype and epoch (`epoch_rows`);
    `identity_final`: the agreement at the last epoch per amplitude and dtype
    (`final_agreement`, `prediction_gaps`); from the runs' recorded kernels and BN states
    and their saved models under `out`."""
    runs = [r for r in runs if r.study == NAME]
    found = records(runs, out)
    rows, finals = [], []
    for dtype in DTYPES:
        control = found.get((dtype, "control", None))
        for amplitude in AMPLITUDES:
            scaled = found.get((dtype, "scaled", amplitude))
            equivalent = found.get((dtype, "equivalent", amplitude))
            if scaled is None or equivalent is None or control is None:
                continue
            rows += epoch_rows(
                amplitude, dtype, scaled["kernel"], equivalent["kernel"], control["kernel"]
            )
            final = {"amplitude": amplitude, "dtype": dtype}
            scaled_run = _run_named(runs, f"identity_{dtype}_amp{amplitude:g}")
            equivalent_run = _run_named(runs, f"identity_{dtype}_amp{amplitude:g}_as_amp1")
            weight = start_weight(scaled_run)
            final.update(final_agreement(amplitude, scaled, equivalent, weight))
            final.update(prediction_gaps(out, scaled_run, equivalent_run))
            finals.append(final)
    return {"identity": rows, "identity_final": finals}


def _run_named(runs, name):
    return next(run for run in runs if run.name == name)


def prediction_gaps(out, scaled_run, equivalent_run) -> dict:
    """Max |p_scaled - p_equivalent| over the test split's class probabilities, from the two
    saved models, with BN in training mode (the batch statistics of the whole test split:
    the trained problem itself) and in inference mode (the moving statistics).

    In inference mode the gap is not rounding: BN's moving variance starts at 1 in both
    models, so the scaled one holds `a^2 mv + (1 - a^2) m^n` instead of `a^2 mv` (see
    `final_agreement`), a term that decays only as `m^n`.

    Returns:
        `{"predictions_training_mode_max_abs": ..., "predictions_inference_max_abs": ...}`,
        None values when a model is missing.
    """
    # Imported here: only this part of the report needs TensorFlow.
    import keras

    from keras_bnreg import data, layers  # noqa: F401  (layers: registers the BN subclass)
    from keras_bnreg.experiment import float_dtype

    names = ("predictions_training_mode_max_abs", "predictions_inference_max_abs")
    paths = [Path(out) / "models" / f"{run.name}.keras" for run in (scaled_run, equivalent_run)]
    if not all(path.is_file() for path in paths):
        return dict.fromkeys(names)
    config = scaled_run.config
    dtype = config["dtype"]
    raw = data.load_raw(config["data"], seed=config["seed"], notify=lambda message: None)
    training, inference = [], []
    with float_dtype(dtype):
        for run, path in zip((scaled_run, equivalent_run), paths):
            inputs = data.prepare(raw, amplitude=run.config["amplitude"], dtype=dtype).x_test
            model = keras.saving.load_model(path)
            training.append(keras.ops.convert_to_numpy(model(inputs, training=True)))
            inference.append(model.predict(inputs, verbose=0))
    return {
        name: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for name, (a, b) in zip(names, (training, inference))
    }


def plot_gaps(rows, path, caption="") -> Path:
    """The kernel gaps per epoch: float32 pairs, the float32 control, float64 pairs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    styles = {
        ("float32", "pair_max_rel"): ("tab:orange", "-", "float32: (a, e) vs (1, e/a^2)"),
        ("float32", "control_max_rel"): ("tab:gray", ":", "float32: (a, e) vs control (1, e)"),
        ("float64", "pair_max_rel"): ("tab:blue", "-", "float64: (a, e) vs (1, e/a^2)"),
    }
    tiny = np.finfo(np.float64).tiny
    for (dtype, column), (color, line, label) in styles.items():
        for index, amplitude in enumerate(AMPLITUDES):
            mine = [r for r in rows if r["dtype"] == dtype and r["amplitude"] == amplitude]
            if not mine:
                continue
            epochs = [r["epoch"] for r in mine if r["epoch"] > 0]
            values = [max(r[column], tiny) for r in mine if r["epoch"] > 0]
            axis.plot(
                epochs,
                values,
                color=color,
                linestyle=line,
                marker="o",
                markersize=3,
                alpha=0.5 + 0.5 * index / len(AMPLITUDES),
                label=label if index == 0 else None,
            )
    axis.axhline(EXACT, color="black", linewidth=0.8, linestyle="--", label=f"{EXACT:g}")
    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("first-layer kernels: max |A - B| / max |B|")
    axis.set_title("Amplitude a, eps e against amplitude 1, eps e / a^2 (a = 2, 3, 4, 6)")
    axis.legend(fontsize=8)
    if caption:
        figure.suptitle(caption, fontsize=7)
    with files.atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return Path(path)


def markdown(finals) -> str:
    body = [
        [
            f"{row['amplitude']:g}",
            row["dtype"],
            render.number(row["kernel_max_rel"], 2),
            render.number(row["gamma_max_rel"], 2),
            render.number(row["moving_mean_max_rel"], 2),
            render.number(row["moving_variance_max_rel"], 2),
            render.number(row["predictions_training_mode_max_abs"], 2),
            render.number(row["predictions_inference_max_abs"], 2),
        ]
        for row in finals
    ]
    headers = [
        "a",
        "dtype",
        "kernel",
        "gamma",
        "moving mean (x a)",
        "moving var. (x a^2)",
        "predictions, BN training mode",
        "predictions, inference",
    ]
    return render.markdown_table(headers, body)


def section(runs, out) -> tuple[str, list[Path]]:
    """Write identity.csv, identity_final.csv/.md and identity.png; return the section."""
    runs = [r for r in runs if r.study == NAME]
    if not runs:
        return "", []
    out = Path(out)
    tables = analyse(runs, out)
    rows, finals = tables["identity"], tables["identity_final"]
    if not rows:
        return "", []
    columns = ["amplitude", "dtype", "epoch", "pair_max_rel", "control_max_rel"]
    files.write_csv(out / "identity.csv", rows, columns)
    written = [out / "identity.csv"]
    written += render.write_table(out, "identity_final", finals, markdown(finals))
    written.append(plot_gaps(rows, out / "identity.png", render.caption(runs)))
    last = max(r["epoch"] for r in rows)
    worst = {
        (dtype, column): max(
            (r[column] for r in rows if r["dtype"] == dtype and r["epoch"] == last), default=None
        )
        for dtype in DTYPES
        for column in ("pair_max_rel", "control_max_rel")
    }
    worst64 = max((r["pair_max_rel"] for r in rows if r["dtype"] == "float64"), default=None)
    text = [
        "## The epsilon identity, exactly (float64)",
        "",
        f"Runs: {render.caption(runs)}. Amplitude a with the first BN's epsilon {EPSILON:g} "
        "against amplitude 1 with epsilon "
        f"{EPSILON:g} / a^2 (the same training problem), and a control at amplitude 1 with "
        f"{EPSILON:g} (not equivalent), each in float32 and float64.",
        "",
        f"Verdict: **{verdict(rows)}**. Largest float64 pair gap over all epochs and "
        f"amplitudes: {render.number(worst64, 2)}; at epoch {last}: float32 pair "
        f"{render.number(worst['float32', 'pair_max_rel'], 2)}, float32 control "
        f"{render.number(worst['float32', 'control_max_rel'], 2)}, float64 control "
        f"{render.number(worst['float64', 'control_max_rel'], 2)}.",
        "",
        f"Rule: {VERDICT_RULE}",
        "",
        "At the last epoch (max relative differences; the moving variance after removing "
        "the weight m^n it still gives its start value 1; predictions: max absolute "
        "difference of the test split's class probabilities, BN on the test split's batch "
        "statistics, and in inference mode on the moving statistics, where the start value "
        "1 of the moving variance, not scaled by a^2, makes a real difference):",
        "",
        markdown(finals),
        "",
        "![identity](identity.png)",
    ]
    return "\n".join(text), written
