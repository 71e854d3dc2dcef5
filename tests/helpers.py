"""What several test files share: paths, data the tests write, runs made by hand, a copy of
the checkout, and the probes run in fresh processes.

Test modules import it (`from helpers import ...`; pytest puts this folder on `sys.path`);
the fixtures built on it live in conftest.py. No test module imports another.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST_T10K = ROOT.parent / "shared" / "data" / "mnist-t10k"
PROBES = Path(__file__).resolve().parent / "probes.py"
TIMING = {"epoch_seconds", "monitor_seconds"}  # history.csv's wall-clock columns


def person_environment() -> dict:
    """os.environ without what the test harness sets and a person would not."""
    harness = ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "BNREG_MODELS", "BNREG_RESULTS")
    return {key: value for key, value in os.environ.items() if key not in harness}


def synthetic_digits(n, seed=0):
    """uint8 images (n, 28, 28) of 10 learnable classes: a class template plus noise."""
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(1234).random((10, 28, 28)) * 255
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = 0.6 * templates[labels] + 0.4 * rng.random((n, 28, 28)) * 255
    return images.astype(np.uint8), labels.astype(np.int64)


def write_npz(path, n_train=600, n_test=200, seed=0):
    """A Keras-layout mnist.npz of synthetic digits at `path`."""
    x_train, y_train = synthetic_digits(n_train, seed)
    x_test, y_test = synthetic_digits(n_test, seed + 1)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def without_timing(rows) -> list[dict]:
    """history.csv rows without their wall-clock columns (the rest is deterministic)."""
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def completed_run_dir(out, name="r"):
    """A completed run directory as `experiment.run` leaves it, written by hand (no
    training): `(its RunConfig, its path)`."""
    from keras_bnreg import files, manifest
    from keras_bnreg.config import RunConfig

    config = RunConfig(out=str(out), run_name=name, hidden=(4,))
    run_dir = Path(out) / name
    files.write_json(run_dir / "config.json", config.to_dict())
    files.write_csv(run_dir / "history.csv", [{"epoch": 1, "loss": 0.5}], ["epoch", "loss"])
    rows = [{"node": j, "alpha": 0.1 * j} for j in range(4)]
    files.write_csv(run_dir / "nodes.csv", rows, ["node", "alpha"])
    files.write_json(run_dir / "summary.json", {"status": "completed"})
    manifest.write(run_dir)
    return config, run_dir


def study_run(study, seed, amplitude=1.0, snr=None, train=0.99, test=0.9, alpha_scale=1.0):
    """A completed `Run` of `study` as the report reads it, made by hand: six nodes with
    alpha growing with the amplitude, fixed norms, gamma and moving variance."""
    from keras_bnreg.config import RunConfig
    from keras_bnreg.studies.runs import Run

    rng = np.random.default_rng(seed)
    nodes = {
        "alpha": alpha_scale * amplitude * rng.uniform(1.0, 2.0, 6),
        "l2": np.full(6, 2.0) * (1.0 if snr is None else snr**0.5),
        "l2_bn": np.full(6, 0.5),
        "gamma": np.full(6, 1.5),
        "moving_variance": np.full(6, 8.0),
    }
    config = RunConfig(amplitude=amplitude, snr=snr, seed=seed, bn_epsilon=(1.0, 1e-3)).to_dict()
    summary = {
        "status": "completed",
        "final": {"accuracy": train, "test_accuracy": test},
        "data": {"r_mean_eigenvalue": 0.1 * amplitude**2},
    }
    name = f"{study}_{amplitude:g}_{snr}_{seed}"
    return Run(name, config, summary, nodes, study=study, role={})


def copy_checkout(target) -> Path:
    """The repository's tracked files (as they are in the working tree) copied to `target`:
    the layout a clone has."""
    target = Path(target)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in tracked:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def probe(name, *args, cwd=ROOT, env=None, timeout=180) -> subprocess.CompletedProcess:
    """Run `probes.py NAME ARGS...` in a fresh Python process (this interpreter)."""
    return subprocess.run(
        [sys.executable, str(PROBES), name, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# The monitor's tests: small inputs, models with BN in every layout, and comparisons.
MONITOR_RNG = np.random.default_rng(0)
IMAGES = MONITOR_RNG.integers(0, 256, size=(40, 12, 12, 2)).astype("float32")
VECTORS = MONITOR_RNG.integers(0, 256, size=(64, 20)).astype("float32")
LABELS = np.arange(len(IMAGES)) % 3
# Measured over an epoch (the effective step): NaN in a single measurement.
STEP = ("angular_update", "effective_lr")


def as_numpy(value):
    """A tensor's or variable's value as float64 NumPy, on every backend."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(keras.ops.copy(value)), dtype=np.float64)


def randomize_batchnorm(model, seed=1):
    """Non-trivial gamma, beta and moving statistics in every BN layer."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2, n))
            layer.beta.assign(rng.normal(size=n))
            layer.moving_mean.assign(rng.normal(size=n))
            layer.moving_variance.assign(rng.uniform(0.2, 3, n))
    return model


def bn_cnn(padding, strides, dilation=1, bn=None):
    """Rescaling -> conv1+BN -> ReLU -> conv2+BN -> pooling -> dense+BN on `IMAGES`: one
    fixed-input layer (patch moments) and two streamed ones."""
    import keras

    bn = bn or keras.layers.BatchNormalization
    inputs = keras.Input((12, 12, 2))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(
        3, 3, strides=strides, padding=padding, dilation_rate=dilation, name="conv1"
    )(x)
    x = bn(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(4, (2, 3), padding="same", name="conv2")(x)
    x = bn(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5, name="dense")(x)
    x = bn(name="bn3")(x)
    return randomize_batchnorm(keras.Model(inputs, x))


def bn_classifier():
    """A trainable 3-class CNN on `IMAGES` (softmax in float32, as mixed precision wants)."""
    import keras

    inputs = keras.Input((12, 12, 2))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Conv2D(5, 3, strides=2, name="conv2")(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    x = keras.layers.BatchNormalization(dtype="float32")(x)
    return keras.Model(inputs, keras.layers.Softmax(dtype="float32")(x))


def assert_same_columns(tables, reference, rtol=1e-5, skip=()):
    """Every layer and column of `reference` (but `skip`) equal in `tables`."""
    assert list(tables) == list(reference)
    for name, table in reference.items():
        for column, values in table.items():
            if column in skip:
                continue
            np.testing.assert_allclose(
                tables[name][column], values, rtol=rtol, atol=1e-9, err_msg=f"{name}.{column}"
            )
