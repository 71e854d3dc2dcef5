"""Readable tables of measured results beside the paper's numbers."""

from __future__ import annotations

from keras_bnreg import paper


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
        value = final.get(key)
        line = f"{label:<36}{_number(value):>14}"
        if reference:
            ref = reference[1].get(paper_key) if paper_key else None
            line += f"{_number(None if ref is None else ref * paper_unit):>18}"
        lines.append(line)
    for label, key in (("train accuracy", "accuracy"), ("test accuracy", "val_accuracy")):
        lines.append(f"{label:<36}{_number(final.get(key)):>14}")
    if reference and "alpha_1e8" in reference[1]:
        lines.append("(the paper prints alpha 'x 1e8'; shown here as its value x 1e-8)")
    return "\n".join(lines)


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"
