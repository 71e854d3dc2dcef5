"""Load a saved model and print what BN did to each layer.

    python -m keras_bnreg.inspect saved_models/amp4_seed0.keras [--data bundled]

Loads with plain `keras.models.load_model` (safe mode on) after `import keras_bnreg`,
prints per measured layer (`pairs.find_pairs`: any Keras model with Dense/Conv layers, BN
or not) the mean L1/L2 norms of the raw and effective weights, gamma and BN's
moving-statistics alpha; with `--data`, also the test accuracy and the data-based alpha
measured on the training split (`monitor.measure_model`).

It never guesses: the input scaling comes from the model's own `input_scaling` layer (every
model train.py saves has one; `--amplitude` is needed only for a model without it, which then
gets `image / 255 * A`), and the seed of the bundled train/test split from the model's record
of its training seed (`--seed` only for a model without one), so the test digits it scores on
are never digits the model trained on.
"""

from __future__ import annotations

import dataclasses
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
        help="data amplitude A, only for a model without its own input scaling (it then gets "
        "image / 255 * A); a model saved by train.py scales its raw-pixel inputs itself",
    )
    parser.add_argument("--snr", type=float, default=None, help="noise SNR (default: none)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the bundled train/test split, only for a model that records none "
        "(default: the model's training seed)",
    )
    return parser


def load(path) -> keras.Model:  # noqa: F821
    """`keras.models.load_model` with safe mode on, after registering keras_bnreg's layer."""
    import keras  # after the CLI's checks: --help and bad input answer without Keras

    import keras_bnreg.layers  # noqa: F401  (registers InspectableBatchNormalization)

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
    """Per-layer table of the model's weights and, given data, accuracy and alpha.

    Works for any Keras model with measurable Dense/Conv layers (`pairs.find_pairs`),
    with or without BN (BN's columns are then blank); the data's images are reshaped to
    the model's input shape when their sizes agree.

    Raises:
        ValueError: no measurable layer, or data the model cannot take.
    """
    from keras_bnreg.monitor import measure_model  # Keras: after the CLI's checks

    lines = []
    x_train = None
    if dataset is not None:
        x_train = model_inputs(model, dataset.x_train)
        x_test = model_inputs(model, dataset.x_test)
        lines.append(
            f"data: {dataset.source} ({dataset.location}), "
            f"{len(dataset.x_train)} train / {len(dataset.x_test)} test, "
            f"amplitude {dataset.amplitude:g}"
        )
        probabilities = model.predict(x_test, batch_size=1024, verbose=0)
        if probabilities.ndim == 2 and probabilities.shape[1] == 10:
            accuracy = float(np.mean(np.argmax(probabilities, axis=1) == dataset.y_test))
            lines.append(f"test accuracy: {accuracy:.4f}")
    tables = measure_model(model, x_train, deep=True, chunk_size=chunk_size)
    width = max(10, *(len(name) + 2 for name in tables))
    columns = [("L1(w)", "l1"), ("L2(w)", "l2"), ("L1(w_bn)", "l1_bn"), ("L2(w_bn)", "l2_bn")]
    columns += [("gamma", "gamma"), ("alpha_mov", "alpha_moving")]
    if x_train is not None:
        columns += [("alpha", "alpha"), ("alpha_c", "alpha_centered")]
    header = f"{'layer':<{width}}{'nodes':>6}" + "".join(f"{title:>11}" for title, _ in columns)
    lines += [header, "-" * len(header)]
    for name, table in tables.items():
        cells = [_cell(np.mean(table[column])) for _, column in columns]
        lines.append(f"{name:<{width}}{len(table['l1']):>6}" + "".join(cells))
    lines.append(
        "(means over each layer's nodes or channels; alpha = sqrt(w^T R w) on the training "
        "split; '-': no BN after the layer)"
    )
    return "\n".join(lines)


def model_inputs(model, images):
    """`images` in the shape the model takes (reshaped when only the layout differs).

    Raises:
        ValueError: the model has several inputs, or the sizes disagree.
    """
    shapes = [tuple(tensor.shape[1:]) for tensor in model.inputs]
    if len(shapes) != 1:
        raise ValueError(f"inspect measures single-input models. Received: inputs {shapes}")
    shape = shapes[0]
    if tuple(images.shape[1:]) == shape:
        return images
    if None not in shape and int(np.prod(shape)) == int(np.prod(images.shape[1:])):
        return images.reshape((len(images), *shape))
    raise ValueError(
        f"the model takes inputs of shape {shape}; the data's are {tuple(images.shape[1:])}. "
        "Received: a model for other data"
    )


def _cell(value) -> str:
    return f"{'-':>11}" if not np.isfinite(value) else f"{value:>11.4g}"


def main(argv=None) -> int:
    args = argparser().parse_args(argv)
    try:
        model = load(args.model)
    except ValueError as error:
        fail(error)
    dataset = None
    if args.data is not None:
        try:
            dataset = load_data(model, args.data, args.amplitude, args.seed, args.snr)
        except ValueError as error:
            fail(error)
    try:
        text = describe(model, dataset)
    except ValueError as error:
        fail(error)
    print(f"model: {args.model}")
    print(text)
    return 0


def load_data(model, spec, amplitude=None, seed=None, snr=None):
    """The data set as `model` takes it, with the scaling and split the model records.

    A model with an `input_scaling` layer (`models.input_scale`) takes raw pixel values and
    scales them itself: its amplitude is `scale * 255`, and `amplitude`, if given, must agree.
    A model without one needs `amplitude` and gets `image / 255 * amplitude`. The bundled
    train/test split is drawn with the model's training seed (`models.training_seed`), or
    `seed` for a model that records none, so the test digits are never training digits.

    Raises:
        ValueError: a setting the model does not record and the caller did not give, a
            setting that contradicts the model's record, or bad data (one line).
    """
    # Here, not at the top: the CLI answers --help and bad input before Keras loads.
    from keras_bnreg import data
    from keras_bnreg.models import input_scale, training_seed

    scale = input_scale(model)
    if scale is None and amplitude is None:
        raise ValueError(
            "the model records no input scaling (no input_scaling layer): give --amplitude A "
            "(it is then fed image / 255 * A)"
        )
    if scale is not None:
        recorded = scale * 255.0
        if amplitude is not None and abs(amplitude - recorded) > 1e-6 * recorded:
            raise ValueError(
                f"--amplitude {amplitude:g} contradicts the model's own input scaling "
                f"(amplitude {recorded:g}); leave --amplitude out"
            )
        amplitude = recorded
    recorded_seed = training_seed(model)
    if seed is not None and recorded_seed is not None and seed != recorded_seed:
        raise ValueError(
            f"--seed {seed} contradicts the model's training seed {recorded_seed}: the bundled "
            "test split of another seed holds digits this model trained on; leave --seed out"
        )
    seed = recorded_seed if seed is None else seed
    if seed is None and spec in ("auto", "bundled"):
        raise ValueError(
            "the model records no training seed and the bundled split depends on it: give "
            "--seed S (the run's --seed), or --data with a fixed test split (npz, IDX, tfds)"
        )
    dataset = data.load(spec, amplitude=amplitude, snr=snr, seed=seed or 0)
    if scale is None:  # the model takes scaled inputs
        dataset = dataclasses.replace(
            dataset, x_train=dataset.scaled(dataset.x_train), x_test=dataset.scaled(dataset.x_test)
        )
    return dataset


if __name__ == "__main__":
    sys.exit(main())
