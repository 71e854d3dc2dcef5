"""train.py end to end on a small data file: outputs, exit codes, determinism, faults."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, person_environment, probe, without_timing, write_npz


def train(tmp_path, *args, timeout=240):
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "--out",
        str(tmp_path / "runs"),
        "--models-dir",
        str(tmp_path / "models"),
        "--quiet",
        *map(str, args),
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=person_environment(),
    )


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_npz):
    tmp = tmp_path_factory.mktemp("train")
    result = train(tmp, "--data", small_npz, "--amplitude", 4, "--epochs", 2, "--hidden", 32, 16)
    return tmp, result


def test_end_to_end_outputs(finished):
    tmp, result = finished
    assert result.returncode == 0, result.stderr
    run = tmp / "runs" / "amp4_seed0"
    history = read_rows(run / "history.csv")
    assert [row["epoch"] for row in history] == ["1", "2"]
    every_epoch = (
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "epoch_seconds",
        "l1_mean",
        "l2_mean",
        "l1_bn_mean",
        "l2_bn_mean",
        "alpha_mean",
        "alpha_std",
        "alpha_centered_mean",
        "alpha_moving_mean",
        "angular_update_mean",
        "effective_lr_mean",
        "hidden2_l2_mean",
        "output_alpha_moving_mean",
    )
    for column in every_epoch:
        assert all(row[column] != "" for row in history), column
    # Deeper layers' data-based alpha: every --monitor-deep-every epochs and at the last.
    for column in ("hidden2_alpha_mean", "output_alpha_mean", "output_alpha_centered_mean"):
        assert [row[column] != "" for row in history] == [False, True], column
    nodes = read_rows(run / "nodes.csv")
    assert len(nodes) == 32
    assert list(nodes[0]) == [
        "node",
        "l1",
        "l2",
        "l1_bn",
        "l2_bn",
        "alpha",
        "alpha_centered",
        "alpha_moving",
        "gamma",
        "beta",
        "moving_mean",
        "moving_variance",
        "angular_update",
        "effective_lr",
    ]
    assert all(float(row["angular_update"]) > 0 for row in nodes)  # the last epoch's turn
    assert len(read_rows(run / "nodes_hidden2.csv")) == 16
    assert len(read_rows(run / "nodes_output.csv")) == 10
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["data"]["source"] == "npz"
    assert (summary["data"]["n_train"], summary["data"]["n_test"]) == (600, 200)
    assert summary["paper"]["table"] == "Table I" and summary["paper"]["l2"] == 0.0077
    assert {"tensorflow", "keras", "numpy"} <= set(summary["versions"])
    assert float(history[-1]["alpha_mean"]) == pytest.approx(summary["final"]["alpha_mean"])
    config = json.loads((run / "config.json").read_text())
    assert config["amplitude"] == 4.0 and config["hidden"] == [32, 16]
    assert (tmp / "models" / "amp4_seed0.keras").is_file()
    assert "Table I" in result.stdout and "alpha = sqrt(w^T R w)" in result.stdout
    assert not list(run.glob(".*.tmp")), "temp files left behind"


@pytest.mark.slow
def test_same_seed_same_numbers(finished, small_npz, tmp_path):
    first_tmp, _ = finished
    again = train(
        tmp_path, "--data", small_npz, "--amplitude", 4, "--epochs", 2, "--hidden", 32, 16
    )
    assert again.returncode == 0, again.stderr
    for name in ("history.csv", "nodes.csv", "nodes_output.csv"):
        first = read_rows(first_tmp / "runs" / "amp4_seed0" / name)
        second = read_rows(tmp_path / "runs" / "amp4_seed0" / name)
        assert without_timing(first) == without_timing(second), name


@pytest.mark.slow
def test_inspect_loads_the_saved_model(finished, small_npz):
    tmp, _ = finished
    model = tmp / "models" / "amp4_seed0.keras"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_bnreg.inspect",
            str(model),
            "--data",
            str(small_npz),
            "--amplitude",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    nodes = read_rows(tmp / "runs" / "amp4_seed0" / "nodes.csv")
    alpha = np.mean([float(row["alpha"]) for row in nodes])
    assert float(lines["hidden1"][-2]) == pytest.approx(alpha, rel=1e-3)


BAD_INPUTS = [
    (["--amplitude", "0"], "amplitude must be a finite number > 0. Received: 0.0"),
    (["--amplitude", "nan"], "amplitude must be a finite number > 0"),
    (["--snr", "-2"], "snr must be a finite number > 0"),
    (["--epochs", "0"], "epochs must be an integer >= 1"),
    (["--batch-size", "0"], "batch_size must be an integer >= 1"),
    (["--lr", "0"], "lr must be a finite number > 0"),
    (["--init-std", "-1"], "init_std must be a finite number > 0"),
    (["--epochs", "ten"], "invalid int value"),
    (["--optimizer", "rmsprop"], "invalid choice"),
    (["--data", "does/not/exist.npz"], "does/not/exist.npz"),
    (["--bn-epsilon", "1e-3", "1e-3", "1e-3"], "bn_epsilon takes 1 value"),
    (["--l2", "-0.1"], "l2 must be a finite number >= 0"),
    (["--validation-fraction", "1.0"], "validation_fraction must be in [0, 1)"),
    (["--hidden", "300", "0"], "hidden width must be an integer >= 1"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_nothing_written(args, message, tmp_path, capsys):
    from keras_bnreg import train as train_module

    with pytest.raises(SystemExit) as stop:
        train_module.main(
            [
                "--out",
                str(tmp_path / "runs"),
                "--models-dir",
                str(tmp_path / "models"),
                "--quiet",
                *args,
            ]
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda p: np.savez(p, x_train=np.zeros((3, 28, 28))), "y_train"),
        (lambda p: Path(p).write_bytes(b"not a zip"), "not a readable .npz archive"),
    ],
)
def test_bad_data_file_in_a_real_process(make_file, message, tmp_path):
    path = tmp_path / "bad.npz"
    make_file(path)
    result = train(tmp_path, "--data", path)
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "models").exists()


@pytest.mark.slow
def test_divergence_stops_with_exit_3_and_keeps_history(tmp_path, small_npz):
    result = train(
        tmp_path,
        "--data",
        small_npz,
        "--epochs",
        3,
        "--hidden",
        8,
        "--optimizer",
        "sgd",
        "--lr",
        "1e38",
        "--steps-per-execution",
        1,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    summary = json.loads((tmp_path / "runs" / "amp1_seed0" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert (tmp_path / "runs" / "amp1_seed0" / "history.csv").is_file()
    assert not (tmp_path / "models").exists()
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_with_exit_130(tmp_path):
    data = write_npz(tmp_path / "mnist.npz", n_train=2000, n_test=100)
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "--data",
        str(data),
        "--epochs",
        "500",
        "--hidden",
        "16",
        "--out",
        str(tmp_path / "runs"),
        "--models-dir",
        str(tmp_path / "models"),
        "--quiet",
    ]
    runs, models = tmp_path / "runs", tmp_path / "models"
    # A previous run of the same name, and what killed saves and runs leave behind.
    (runs / "amp1_seed0").mkdir(parents=True)
    (runs / "amp1_seed0" / "summary.json").write_text('{"status": "completed"}')
    models.mkdir()
    (models / "amp1_seed0.keras").write_bytes(b"the previous run's model")
    (models / ".amp1_seed0.keras.k1ll3d.tmp.keras").write_bytes(b"half a model")
    (runs / ".amp1_seed0.partial-999999999").mkdir()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        # As from a terminal: a shell's background jobs (and so a pytest started with `&`)
        # inherit SIGINT ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    staging = runs / f".amp1_seed0.partial-{process.pid}"
    history = staging / "history.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (history.exists() and len(read_rows(history)) >= 2):
        time.sleep(0.2)
    # While the new run trains, the previous one is untouched; the leftovers are gone.
    assert (runs / "amp1_seed0" / "summary.json").read_text() == '{"status": "completed"}'
    assert (models / "amp1_seed0.keras").read_bytes() == b"the previous run's model"
    assert not (models / ".amp1_seed0.keras.k1ll3d.tmp.keras").exists()
    assert not (runs / ".amp1_seed0.partial-999999999").exists()
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    history = runs / "amp1_seed0" / "history.csv"
    summary = json.loads((runs / "amp1_seed0" / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["epochs_completed"] == len(read_rows(history)) >= 2
    # The run directory now describes the interrupted run: the old model went with the old run.
    assert not (models / "amp1_seed0.keras").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["amp1_seed0"]
    assert "Traceback" not in stderr


def test_saved_model_scores_raw_digits_in_a_fresh_process_outside_the_checkout(
    finished, small_npz, tmp_path
):
    tmp, _ = finished
    summary = json.loads((tmp / "runs" / "amp4_seed0" / "summary.json").read_text())
    model = tmp / "models" / "amp4_seed0.keras"
    result = probe("score_saved_model", model, small_npz, cwd=tmp_path, env=person_environment())
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["accuracy"] == pytest.approx(summary["final"]["test_accuracy"], abs=1e-6)
    assert answer["accuracy"] > 0.3  # it learnt something: not a chance-level comparison
    assert answer["scale"] == pytest.approx(4 / 255) and answer["seed"] == 0


def test_a_training_run_imports_neither_the_studies_nor_the_figures_nor_ray(tmp_path, small_npz):
    arguments = ["--data", small_npz, "--epochs", 1, "--hidden", 4, "--quiet"]
    arguments += ["--out", tmp_path / "runs", "--models-dir", tmp_path / "models"]
    result = probe("modules_after", ROOT / "train.py", *arguments, cwd=tmp_path, timeout=240)
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["exit_code"] == 0, result.stderr[-2000:]
    assert "keras_bnreg.experiment" in answer["imported"]  # it trained
    # (Keras itself imports matplotlib when it is installed; the package's figures never load.)
    unwanted = {"keras_bnreg.studies", "keras_bnreg.plots", "keras_bnreg.theory.plots", "ray"}
    assert unwanted & set(answer["imported"]) == set()


def test_help_answers_without_tensorflow():
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--amplitude" in result.stdout
    assert "--no-bn" in result.stdout and "(default: 300)" in " ".join(result.stdout.split())
    assert time.perf_counter() - start < 5  # TensorFlow's import alone takes 5-25 s here


def test_readable_output_and_tensorboard_logs(tmp_path, small_npz):
    """One run, as a person types it (no --quiet): one short plain line per epoch, the data
    notice as the only line on stderr, and TensorBoard's scalars and per-node histograms."""
    from tensorboard.backend.event_processing import event_accumulator

    logs = tmp_path / "tb"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--data", str(small_npz), "--epochs", "2"]
        + ["--hidden", "8", "--out", "r", "--models-dir", "m", "--tensorboard", str(logs)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=person_environment(),
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    for line in lines:
        assert len(line) <= 120 and "alpha" in line and "val_acc" in line, line
    assert "\x1b" not in result.stdout + result.stderr
    # stderr: only the data notice; TensorFlow's start-up lines are silenced
    assert result.stderr.strip().splitlines() == [
        f"data: npz ({small_npz}), 600 training / 200 test digits: "
        "not the paper's 60,000 training digits"
    ]
    assert "not the paper's 60,000" in result.stdout  # repeated under the end-of-run table

    def tags(directory):
        accumulator = event_accumulator.EventAccumulator(str(directory), size_guidance={})
        accumulator.Reload()
        found = accumulator.Tags()
        return set(found["scalars"]) | set(found["tensors"]) | set(found["histograms"])

    assert {"epoch_loss", "epoch_accuracy", "epoch_alpha_mean"} <= tags(logs / "train")
    assert "epoch_accuracy" in tags(logs / "validation")
    assert {"hidden1/alpha", "hidden1/l2", "output/gamma"} <= tags(logs / "nodes")


def test_unexpected_failure_is_recorded_with_exit_4(tmp_path, small_npz, monkeypatch, capsys):
    from keras_bnreg import experiment
    from keras_bnreg import train as train_module

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure\ninside fit")

    monkeypatch.setattr(experiment, "train_model", broken)
    code = train_module.main(
        ["--data", str(small_npz), "--hidden", "8", "--quiet"]
        + ["--out", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models")]
    )
    assert code == 4
    run = tmp_path / "runs" / "amp1_seed0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "simulated failure" in summary["error"]
    assert "Traceback" in (run / "error.log").read_text()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the run failed: RuntimeError"), err
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


@pytest.mark.slow
def test_a_rerun_without_a_model_removes_the_old_model(small_npz, tmp_path):
    runs, models = tmp_path / "runs", tmp_path / "models"
    first = train(tmp_path, "--data", small_npz, "--epochs", 1, "--hidden", 8)
    assert first.returncode == 0 and (models / "amp1_seed0.keras").is_file()
    again = train(tmp_path, "--data", small_npz, "--epochs", 2, "--hidden", 8, "--no-save-model")
    assert again.returncode == 0, again.stderr
    summary = json.loads((runs / "amp1_seed0" / "summary.json").read_text())
    assert summary["epochs_completed"] == 2 and summary["model_path"] is None
    assert not (models / "amp1_seed0.keras").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["amp1_seed0"]
