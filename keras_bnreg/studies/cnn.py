"""CNN: Table I's amplitude sweep on a small CNN (two Conv2D+BN blocks, then Dense+BN).

Does the first convolution's alpha, `sqrt(E[(w_c . p)^2])` over every input patch,
scale with the input amplitude like the MLP's first layer, and what do the deeper layers
do? Same protocol as Table I (amplitudes 2..6, clean data, seeds 0..n-1), `arch="cnn"`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_bnreg import paper, render
from keras_bnreg.studies import stats

NAME = "cnn"
DESCRIPTION = "Table I's amplitude sweep on a small CNN (Conv2D+BN blocks)"
IN_ALL = False
SEEDS = "seeds"
USES = ()
FIGURES = ()
CHANNELS = (16, 32)  # channels of the two Conv2D blocks
MEASURED = ("alpha", "alpha_moving", "l2", "l2_bn")


def configs(settings) -> list:
    """Amplitudes 2..6 (clean data), seeds 0..n-1, the CNN of `models.build_cnn`."""
    return [
        settings.config(
            f"cnn_amp{a:g}_seed{s}",
            NAME,
            {"group": "cnn amplitude sweep"},
            amplitude=a,
            seed=s,
            arch="cnn",
            hidden=CHANNELS,
        )
        for a in paper.TABLE1_AMPLITUDES
        for s in range(settings.seeds)
    ]


def analyse(runs, out) -> dict[str, list[dict]]:
    """`cnn`: per layer, log-log slopes against amplitude (95% CI over seeds), means at each."""
    group = [run for run in runs if run.completed and run.study == NAME]
    if not group:
        return {"cnn": []}
    amplitudes = sorted({float(run.config["amplitude"]) for run in group})
    rows = []
    for layer in group[0].layers:
        row = {"layer": layer, "channels or nodes": len(group[0].layers[layer]["l2"])}
        for quantity in MEASURED:

            def value(run, layer=layer, quantity=quantity):
                return float(np.nanmean(run.layers[layer][quantity]))

            slopes = stats.slopes_by_seed(group, "amplitude", value)
            row[f"{quantity}_slope_mean"] = float(np.mean(slopes)) if len(slopes) else None
            row[f"{quantity}_slope_ci95"] = stats.confidence_half_width(slopes)
            for amplitude in amplitudes:
                values = [value(r) for r in group if float(r.config["amplitude"]) == amplitude]
                row[f"{quantity}_at_{amplitude:g}"] = float(np.mean(values))
        rows.append(row)
    return {"cnn": rows}


def section(runs, out) -> tuple[str, list[Path]]:
    rows = analyse(runs, out)["cnn"]
    if not rows:
        return "", []
    used = [run for run in runs if run.completed and run.study == NAME]
    at = sorted(float(k.removeprefix("alpha_at_")) for k in rows[0] if k.startswith("alpha_at_"))
    low, high = f"{at[0]:g}", f"{at[-1]:g}"
    body = [
        [
            r["layer"],
            r["channels or nodes"],
            *(
                render.with_interval(r[f"{q}_slope_mean"], r[f"{q}_slope_ci95"], 3)
                for q in MEASURED
            ),
            f"{r[f'alpha_at_{low}']:.4g}",
            f"{r[f'alpha_at_{high}']:.4g}",
        ]
        for r in rows
    ]
    table = render.markdown_table(
        [
            "layer",
            "channels / nodes",
            "slope of alpha",
            "slope of alpha (moving stats)",
            "slope of L2 of w",
            "slope of L2 of w_bn",
            f"alpha at A={low}",
            f"alpha at A={high}",
        ],
        body,
    )
    text = "\n".join(
        [
            "## CNN: the amplitude sweep on two Conv2D+BN blocks",
            "",
            f"Runs: {render.caption(used)}. Model: `models.build_cnn(hidden={CHANNELS})`: "
            "3x3 convolutions (the first at stride 1, the second at stride 2, 'same' "
            "padding), each followed by BN and ReLU, global average pooling, Dense(10)+BN.",
            "",
            "Log-log slopes against amplitude (mean ± 95% CI over seeds) of each layer's "
            "channel means; a convolution's alpha is `sqrt(E[(w_c . p)^2])` over every input "
            "patch at every position. A slope of 1 means alpha grows in proportion to the "
            "input amplitude (as the MLP's first layer does when its kernel does not "
            "change with the amplitude); 0 means it does not depend on it.",
            "",
            table,
        ]
    )
    written = render.write_table(out, "cnn", rows, text)
    return text, written
