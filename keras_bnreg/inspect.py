"""Load a saved model and print what BN did to each layer.

    python -m keras_bnreg.inspect saved_models/amp4_seed0.keras [--data PATH] [--amplitude A]

Loads with plain `keras.models.load_model` (safe mode on) after `import keras_bnreg`,
prints per layer the mean L1/L2 norms of the raw and effective weights, gamma and BN's
moving-statistics alpha; with `--data`, also the test accuracy and the data-based alpha
measured on the training split.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

from keras_bnreg.cli import ArgumentParser, fail


def argparser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m keras_bnreg.inspect", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("model", help="a .keras file written by train.py")
    parser.add_argument(
        "--data",
        default=None,
        help="auto | tfds | bundled | mnist.npz | IDX directory: measure on it",
    )
    parser.add_argument(
        "--amplitude",
        type=float,
        default=None,
        help="data amplitude (default: the one in the run's config.json, else 1)",
    )
    parser.add_argument("--snr", type=float, default=None, help="noise SNR (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the bundled split")
    return parser


def load(path) -> keras.Model:  # noqa: F821
    """`keras.models.load_model` with safe mode on, after registering keras_bnreg's layer."""
    import keras

    import keras_bnreg  # noqa: F401  (registers InspectableBatchNormalization)

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras archive (a zip written by model.save)")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a broken archive
        raise ValueError(f"{path} could not be loaded as a Keras model: {error}") from None


def describe(model, dataset=None, chunk_size=8192) -> str:
    """Per-layer table of the model's weights and, given data, accuracy and alpha."""
    from keras_bnreg import measures
    from keras_bnreg.models import dense_bn_pairs
    from keras_bnreg.monitor import RegularizationMonitor

    tables = None
    lines = []
    if dataset is not None:
        monitor = RegularizationMonitor(dataset.x_train, chunk_size=chunk_size)
        monitor.set_model(model)
        monitor.on_train_begin()
        tables = monitor.measure()
        probabilities = model.predict(dataset.x_test, batch_size=1024, verbose=0)
        accuracy = float(np.mean(np.argmax(probabilities, axis=1) == dataset.y_test))
        lines.append(
            f"data: {dataset.source} ({dataset.location}), "
            f"{len(dataset.x_train)} train / {len(dataset.x_test)} test, "
            f"amplitude {dataset.amplitude:g}"
        )
        lines.append(f"test accuracy: {accuracy:.4f}")
    header = (
        f"{'layer':<10}{'nodes':>6}{'L1(w)':>11}{'L2(w)':>11}{'L1(w_bn)':>11}"
        f"{'L2(w_bn)':>11}{'gamma':>9}{'alpha_mov':>11}"
    )
    if tables:
        header += f"{'alpha':>11}{'alpha_c':>11}"
    lines += [header, "-" * len(header)]
    for pair in dense_bn_pairs(model):
        kernel = np.asarray(pair.dense.kernel.numpy(), dtype=np.float64)
        bias = (
            np.asarray(pair.dense.bias.numpy(), dtype=np.float64) if pair.dense.use_bias else None
        )
        w_bn, _ = pair.bn.fold(kernel, bias)
        stats = pair.bn.statistics()
        l1, l2 = measures.node_norms(kernel)
        l1_bn, l2_bn = measures.node_norms(w_bn)
        moving = measures.alpha_moving(stats["moving_mean"], stats["moving_variance"], bias)
        line = (
            f"{pair.name:<10}{kernel.shape[1]:>6}{l1.mean():>11.4g}{l2.mean():>11.4g}"
            f"{l1_bn.mean():>11.4g}{l2_bn.mean():>11.4g}{stats['gamma'].mean():>9.3g}"
            f"{moving.mean():>11.4g}"
        )
        if tables:
            table = tables[pair.name]
            line += f"{table['alpha'].mean():>11.4g}{table['alpha_centered'].mean():>11.4g}"
        lines.append(line)
    lines.append("(means over each layer's nodes; alpha = sqrt(w^T R w) on the training split)")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = argparser().parse_args(argv)
    try:
        model = load(args.model)
    except ValueError as error:
        fail(error)
    dataset = None
    if args.data is not None:
        from keras_bnreg import data

        amplitude = args.amplitude if args.amplitude is not None else _run_amplitude(args.model)
        try:
            dataset = data.load(args.data, amplitude=amplitude, snr=args.snr, seed=args.seed)
        except data.DataError as error:
            fail(error)
    print(f"model: {args.model}")
    print(describe(model, dataset))
    return 0


def _run_amplitude(model_path) -> float:
    """The amplitude in the run's config.json, if the model sits beside a known run."""
    import json

    name = Path(model_path).stem
    for config in (Path("runs") / name / "config.json",):
        if config.is_file():
            return float(json.loads(config.read_text()).get("amplitude", 1.0))
    return 1.0


if __name__ == "__main__":
    sys.exit(main())
