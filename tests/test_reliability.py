"""Bad input to train.py, as a person types it: one line `error: ...`, exit code 2, no
traceback, and nothing that existed before changed (a finished run and its model are
hashed before and after). Every case fails before TensorFlow is imported, so each is one
quick subprocess."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import ROOT, person_environment, synthetic_digits, write_npz

RUN = ["--run-name", "amp1_seed0", "--out", "runs", "--models-dir", "models", "--quiet"]


def run_train(cwd, *args, timeout=120):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=person_environment(),
    )


def tree_hashes(root):
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def workplace(tmp_path_factory):
    """A directory holding a finished run (tiny) and the bad inputs the cases use."""
    root = tmp_path_factory.mktemp("reliability")
    write_npz(root / "mnist.npz", n_train=200, n_test=50)
    result = run_train(root, "--data", "mnist.npz", "--epochs", 1, "--hidden", 8, *RUN, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (root / "models" / "amp1_seed0.keras").is_file()
    (root / "a_file").write_text("not a directory")
    images, labels = synthetic_digits(20)
    arrays = {"x_train": images, "y_train": labels, "x_test": images, "y_test": labels}
    np.savez(root / "string_labels.npz", **{**arrays, "y_train": labels.astype(str)})
    np.savez(root / "fractional.npz", **{**arrays, "x_train": images / 2.0 + 0.25})
    idx = root / "idx_overflow"
    idx.mkdir()
    huge = (2051).to_bytes(4, "big") + b"".join((2**32 - 1).to_bytes(4, "big") for _ in "abc")
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (idx / name).write_bytes(huge + bytes(64))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (idx / name).write_bytes((2049).to_bytes(4, "big") + (20).to_bytes(4, "big") + bytes(20))
    (root / "empty_tfds").mkdir()
    return root


CASES = [
    (["--seed", -1], "seed must be an integer in [0, 2147483647]"),
    (["--seed", 2**32], "seed must be an integer in [0, 2147483647]"),
    (["--noise-seed", -5], "noise_seed must be an integer in"),
    (["--snr", "-1e-3"], "snr must be a finite number > 0. Received: -0.001"),
    (["--amplitude", "1e-300"], "non-zero in float32"),
    (["--amplitude", "1e308"], "non-zero in float32"),
    (["--bn-epsilon", "1e308"], "bn_epsilon must lie between"),
    (["--lr", "inf"], "lr must be a finite number > 0"),
    (["--hidden", 100_000_000_000], "GiB"),
    (["--epochs", 0], "epochs must be an integer >= 1"),
    (["--tensorboard", "a_file"], "--tensorboard a_file is not a directory"),
    (["--tensorboard", "a_file/logs"], "a_file is not a directory"),
    (["--models-dir", "a_file"], "--models-dir a_file is not a directory"),
    (["--out", "a_file"], "--out a_file is not a directory"),
    (["--data", "string_labels.npz"], "y_train labels must be integers 0..9"),
    (["--data", "fractional.npz"], "non-integer values"),
    (["--data", "idx_overflow"], "data bytes, expected"),
    (["--data", "no/such.npz"], "no such file or directory"),
    (["--data", "tfds", "--data-dir", "empty_tfds"], "not prepared and the download host"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(map(str, c[0])) for c in CASES])
def test_bad_input_changes_nothing(workplace, args, message):
    before = tree_hashes(workplace)
    start = time.perf_counter()
    # --run-name and --out last: a bad --out case overrides them
    result = run_train(workplace, "--data", "mnist.npz", *RUN, *args)
    elapsed = time.perf_counter() - start
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert tree_hashes(workplace) == before
    assert elapsed < 60  # no network wait, no training
