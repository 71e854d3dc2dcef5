"""`python -m keras_bnreg.inspect` on the models people have, and the no-BN run's history."""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_bnreg import build_mlp, data, files
from keras_bnreg.config import RunConfig
from keras_bnreg.experiment import run
from keras_bnreg.inspect import describe
from keras_bnreg.inspect import main as inspect_main

ROOT = Path(__file__).resolve().parents[1]


def inspect(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "keras_bnreg.inspect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def no_bn_run(tmp_path_factory, small_npz):
    tmp = tmp_path_factory.mktemp("nobn")
    config = RunConfig(
        data=str(small_npz),
        hidden=(12, 6),
        batchnorm=False,
        epochs=2,
        monitor_deep_every=1,
        out=str(tmp / "runs"),
        models_dir=str(tmp / "models"),
        run_name="nobn",
    )
    return tmp, run(config, verbose=0)


def test_no_bn_run_keeps_every_measured_column(no_bn_run):
    _, result = no_bn_run
    history = files.read_csv(result.run_dir / "history.csv")
    assert len(history) == 2
    for prefix in ("", "hidden2_", "output_"):
        for column in ("alpha_mean", "alpha_centered_mean", "l2_mean", "alpha_std"):
            values = [row[f"{prefix}{column}"] for row in history]
            # present and finite (dead ReLUs at Adam 0.1 without BN can make a deeper alpha 0)
            assert all(isinstance(value, float) and value >= 0 for value in values), column
    assert history[-1]["alpha_mean"] > 0
    nodes = files.read_csv(result.run_dir / "nodes_output.csv")
    assert len(nodes) == 10 and np.isnan(nodes[0]["gamma"])  # no BN: NaN, not made up


def test_inspect_a_no_bn_model(no_bn_run, small_npz):
    tmp, result = no_bn_run
    completed = inspect(result.model_path, "--data", small_npz, cwd=tmp)
    assert completed.returncode == 0, completed.stderr
    rows = {line.split()[0]: line.split() for line in completed.stdout.splitlines() if line}
    nodes = files.read_csv(result.run_dir / "nodes.csv")
    assert rows["hidden1"][1] == "12"
    assert rows["hidden1"][4] == "-"  # no BN: no effective weight
    assert float(rows["hidden1"][-2]) == pytest.approx(np.mean([r["alpha"] for r in nodes]), 1e-3)


def test_inspect_a_stock_keras_cnn(small_npz):
    """Flat 784-pixel data reshaped to the CNN's (28, 28, 1) input."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
    text = describe(keras.Model(inputs, outputs), data.load(str(small_npz)))
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line}
    assert rows["conv"][1] == "4" and "head" not in rows
    assert float(rows["conv"][-2]) > 0


def test_inspect_refuses_a_model_for_other_data(tmp_path, small_npz, capsys):
    path = tmp_path / "wide.keras"
    build_mlp((4,), input_dim=100).save(path)
    with pytest.raises(SystemExit) as exit_info:
        inspect_main([str(path), "--data", str(small_npz), "--amplitude", "1"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: the model takes inputs of shape (100,); the data's are (784,)")
    assert len(error.splitlines()) == 1


@pytest.mark.parametrize("bn", [True, False])
def test_inspect_a_loaded_sequential_model(tmp_path, small_npz, capsys, bn):
    """A Sequential model loaded from a file (rebuilt layer by layer, so each layer holds
    calls of earlier builds): every Dense layer is measured, with or without BN."""
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(6, name="hidden")]
    layers += [keras.layers.BatchNormalization()] if bn else []
    layers += [keras.layers.ReLU(), keras.layers.Dense(10, name="out")]
    layers += [keras.layers.BatchNormalization()] if bn else []
    keras.Sequential(layers + [keras.layers.Softmax()]).save(tmp_path / "seq.keras")
    assert (
        inspect_main([str(tmp_path / "seq.keras"), "--data", str(small_npz), "--amplitude", "1"])
        == 0
    )
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line}
    assert rows["hidden"][1] == "6" and rows["out"][1] == "10"
    assert float(rows["hidden"][-2]) > 0  # alpha on the training split


def test_inspect_without_data_reads_the_weights():
    text = describe(build_mlp((4,), input_dim=20))
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line}
    assert rows["hidden1"][1] == "4" and rows["output"][1] == "10"
    assert float(rows["output"][-1]) > 0 and "alpha_c" not in text


def test_write_csv_refuses_unknown_columns(tmp_path):
    with pytest.raises(ValueError, match=r"not in the header. Received: \['b'\]"):
        files.write_csv(tmp_path / "x.csv", [{"a": 1.0, "b": 2.0}], ["a"])
    assert not (tmp_path / "x.csv").exists()


@pytest.fixture(scope="module")
def amp4_seed3(tmp_path_factory, small_npz):
    tmp = tmp_path_factory.mktemp("amp4")
    config = RunConfig(
        data=str(small_npz),
        amplitude=4.0,
        seed=3,
        hidden=(8,),
        epochs=1,
        out=str(tmp / "runs"),
        models_dir=str(tmp / "models"),
    )
    return run(config, verbose=0)


def test_inspect_takes_scaling_and_seed_from_the_model(amp4_seed3, small_npz, tmp_path):
    """From a folder with no runs/ beside it: nothing to guess from but the model itself."""
    completed = inspect(amp4_seed3.model_path, "--data", small_npz, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "amplitude 4" in completed.stdout
    accuracy = float(completed.stdout.split("test accuracy:")[1].split()[0])
    assert accuracy == pytest.approx(amp4_seed3.summary["final"]["test_accuracy"], abs=1e-4)
    rows = {line.split()[0]: line.split() for line in completed.stdout.splitlines() if line}
    nodes = files.read_csv(amp4_seed3.run_dir / "nodes.csv")
    alpha = np.mean([row["alpha"] for row in nodes])
    assert float(rows["hidden1"][-2]) == pytest.approx(alpha, rel=1e-3)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--amplitude", "1"], "--amplitude 1 contradicts the model's own input scaling"),
        (["--seed", "0"], "--seed 0 contradicts the model's training seed 3"),
    ],
)
def test_inspect_refuses_settings_that_contradict_the_model(
    amp4_seed3, small_npz, extra, message, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        inspect_main([str(amp4_seed3.model_path), "--data", str(small_npz), *extra])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {message}") and len(error.splitlines()) == 1


def test_inspect_asks_for_what_a_foreign_model_does_not_record(tmp_path, capsys):
    path = tmp_path / "plain.keras"
    build_mlp((4,)).save(path)  # no input_scaling layer
    with pytest.raises(SystemExit) as exit_info:
        inspect_main([str(path), "--data", "bundled"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "give --amplitude A" in error and len(error.splitlines()) == 1
