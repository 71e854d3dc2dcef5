"""The paper's reference numbers and protocol, in one place.

Annamalai & Thakur, "Theoretical Insight into Batch Normalization: Data Dependent
Auto-Tuning of Regularization Rate", Section IV. Every measured result the project
prints is shown beside these values; nothing here is ever fitted or adjusted.
"""

from __future__ import annotations

TITLE = (
    "Theoretical Insight into Batch Normalization: Data Dependent Auto-Tuning of "
    "Regularization Rate (Annamalai & Thakur)"
)

# Section IV: 784 -> 300 (ReLU) -> 10 (softmax), BN right after every Dense layer,
# batch 128, categorical cross-entropy, Adam lr 0.1, small Gaussian init.
# The epoch count is not stated in the paper.
PROTOCOL = {
    "hidden": (300,),
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 0.1,
    "loss": "categorical_crossentropy",
    "init": "small Gaussian (std not stated)",
    "epochs": "not stated",
}

# Table I: mean over the 300 hidden nodes, by data amplitude.
# alpha is printed in units of 1e-8 ("alpha (x 10^8)").
TABLE1 = {
    2.0: {"l1": 0.7210, "l2": 0.0322, "alpha_1e8": 0.92},
    3.0: {"l1": 0.3003, "l2": 0.0134, "alpha_1e8": 2.2},
    4.0: {"l1": 0.1717, "l2": 0.0077, "alpha_1e8": 3.9},
    5.0: {"l1": 0.1096, "l2": 0.0049, "alpha_1e8": 5.9},
    6.0: {"l1": 0.0793, "l2": 0.0035, "alpha_1e8": 8.3},
}

# Table II: mean over the 300 hidden nodes, by signal-to-noise ratio (amplitude 1).
TABLE2 = {
    100.0: {"l1": 2.8823, "l2": 0.1286},
    10.0: {"l1": 2.5811, "l2": 0.1152},
    1.0: {"l1": 0.6090, "l2": 0.0272},
    0.5: {"l1": 0.3646, "l2": 0.0163},
}

TABLE1_AMPLITUDES = tuple(TABLE1)
TABLE2_SNRS = tuple(TABLE2)


def reference_row(amplitude: float, snr: float | None) -> tuple[str, dict] | None:
    """The paper's row for a run's data setting, if the paper reports one.

    Args:
        amplitude: the data amplitude A (pixels are `image / 255 * A`).
        snr: the signal-to-noise ratio, or None for clean data.

    Returns:
        `("Table I", row)` or `("Table II", row)`, or None when no row matches.
    """
    if snr is None and float(amplitude) in TABLE1:
        return "Table I", TABLE1[float(amplitude)]
    if snr is not None and float(amplitude) == 1.0 and float(snr) in TABLE2:
        return "Table II", TABLE2[float(snr)]
    return None
