"""Tables as text: Markdown and CSV files of study rows, and the one-run console table.

No analysis happens here: every function takes numbers already computed and formats them.
"""

from __future__ import annotations

from pathlib import Path

from keras_bnreg import files, paper


def number(value, digits: int = 4) -> str:
    """`value` to `digits` significant digits; `-` for a missing value."""
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}g}"


def with_interval(mean, half_width=None, digits: int = 4) -> str:
    """`mean ± half_width` (a 95% confidence interval's half width); `-` when missing."""
    if mean is None or mean != mean:
        return "-"
    text = f"{mean:.{digits}g}"
    if half_width is not None and half_width == half_width:
        text += f" ± {half_width:.2g}"
    return text


def markdown_table(headers, rows) -> str:
    """A GitHub Markdown table: `headers` (strings), `rows` (lists of cells)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_table(out, name: str, rows: list[dict], markdown: str) -> list[Path]:
    """Write `<out>/<name>.csv` (every key of the rows) and `<out>/<name>.md`; return both."""
    out = Path(out)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    files.write_csv(out / f"{name}.csv", rows, columns)
    files.write_text(out / f"{name}.md", markdown + "\n")
    return [out / f"{name}.csv", out / f"{name}.md"]


def run_table(summary: dict, amplitude: float, snr: float | None) -> str:
    """A short table: the first hidden layer's mean L1, L2 and alpha beside the paper's row."""
    final = summary.get("final", {})
    reference = paper.reference_row(amplitude, snr)
    header = f"{'quantity (mean over hidden nodes)':<36}{'measured':>14}"
    if reference:
        header += f"{'paper ' + reference[0]:>18}"
    lines = [header, "-" * len(header)]
    rows = [
        ("L1 norm of w", "l1_mean", "l1", 1.0),
        ("L2 norm of w", "l2_mean", "l2", 1.0),
        ("L1 norm of w_bn (effective)", "l1_bn_mean", None, 1.0),
        ("L2 norm of w_bn (effective)", "l2_bn_mean", None, 1.0),
        ("alpha = sqrt(w^T R w)", "alpha_mean", "alpha_1e8", 1e-8),
        ("alpha, centred", "alpha_centered_mean", None, 1.0),
        ("alpha from BN moving stats", "alpha_moving_mean", None, 1.0),
    ]
    for label, key, paper_key, paper_unit in rows:
        line = f"{label:<36}{number(final.get(key)):>14}"
        if reference:
            ref = reference[1].get(paper_key) if paper_key else None
            line += f"{number(None if ref is None else ref * paper_unit):>18}"
        lines.append(line)
    for label, key in (("train accuracy", "accuracy"), ("test accuracy", "val_accuracy")):
        lines.append(f"{label:<36}{number(final.get(key)):>14}")
    if reference and "alpha_1e8" in reference[1]:
        lines.append("(the paper prints alpha 'x 1e8'; shown here as its value x 1e-8)")
    return "\n".join(lines)


def caption(runs) -> str:
    """What a table or figure was computed from, taken from the runs themselves:
    `<data> (<n> training images), <epochs> epoch(s), <k> seed(s), hidden <widths>`."""
    runs = [run for run in runs if not run.problem]
    if not runs:
        return "no runs"
    data = sorted(
        {
            f"{run.summary.get('data', {}).get('source', run.config['data'])} "
            f"({run.summary.get('data', {}).get('n_train', '?')} training images)"
            for run in runs
        }
    )
    epochs = sorted({int(run.config["epochs"]) for run in runs})
    seeds = len({run.seed for run in runs})
    return (
        f"{' / '.join(data)}, {'/'.join(map(str, epochs))} epoch{'s' * (epochs != [1])}, "
        f"{seeds} seed{'s' * (seeds != 1)}, hidden {width_text(runs)}"
    )


def width_text(runs) -> str:
    """The hidden widths of the runs, e.g. `300` or `16` or `[16, 16]` / `16`."""
    widths = sorted({tuple(run.config["hidden"]) for run in runs if not run.problem})
    texts = [str(w[0]) if len(w) == 1 else str(list(w)) for w in widths]
    return " / ".join(texts) or "?"
