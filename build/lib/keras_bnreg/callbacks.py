"""Small callbacks a run needs beside the monitor: timing, divergence, history file."""

from __future__ import annotations

import sys
import time

import keras
import numpy as np

from keras_bnreg import files


class EpochTimer(keras.callbacks.Callback):
    """Puts `epoch_seconds` (training + validation, before the monitor) into logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training as soon as the loss is not finite (checked after every compiled call)."""

    def on_train_begin(self, logs=None):
        self.diverged = False

    def _check(self, logs):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.diverged = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs)


class HistoryWriter(keras.callbacks.Callback):
    """Rewrites `path` atomically after every epoch, so a stop keeps every finished epoch.

    Columns are `columns`, then any other log entry in the order it first appears: no
    measured value is lost.
    """

    def __init__(self, path, columns):
        super().__init__()
        self.path = path
        self.columns = list(columns)

    def on_train_begin(self, logs=None):
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.rows.append(row)
        self.columns += [key for key in row if key not in self.columns]
        files.write_csv(self.path, self.rows, self.columns)


class EpochLine(keras.callbacks.Callback):
    """One plain line per epoch (no progress bar, no ANSI codes), under 120 columns:

    `epoch 3/10  loss 0.2345  acc 0.9312  val_acc 0.9010  alpha 12.3  L2(w) 0.0213  2.1s`

    alpha and L2(w) are the first hidden layer's means over its nodes (the monitor's
    `alpha_mean`, `l2_mean`); every other number is in history.csv. Put it after the
    monitor in the callback list, so that the epoch's measurements are in `logs`.
    """

    def __init__(self, epochs, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for key, label, style in (
            ("loss", "loss", ".4f"),
            ("accuracy", "acc", ".4f"),
            ("val_accuracy", "val_acc", ".4f"),
            ("alpha_mean", "alpha", ".4g"),
            ("l2_mean", "L2(w)", ".4g"),
        ):
            if key in logs:
                parts.append(f"{label} {float(logs[key]):{style}}")
        if "epoch_seconds" in logs:
            parts.append(f"{float(logs['epoch_seconds']):.1f}s")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


class KernelRecorder(keras.callbacks.Callback):
    """Keeps one Dense layer's kernel (and its BN's state) before training and after every
    epoch, and rewrites them atomically to an `.npz` file after each epoch.

    Arrays in the file, each with a leading epoch axis (index 0 = before training):
    `kernel` (epochs + 1, d, n), `bias`, and for a BN layer `gamma`, `beta`,
    `moving_mean`, `moving_variance` (epochs + 1, n); `epoch` holds 0, 1, 2, ...

    Args:
        path: the `.npz` file to write.
        dense: the Dense layer to record.
        bn: the BatchNormalization layer right after it, or None.
    """

    def __init__(self, path, dense, bn=None):
        super().__init__()
        self.path = path
        self.dense = dense
        self.bn = bn

    def on_train_begin(self, logs=None):
        self.records = {}
        self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        self._record(epoch + 1)
        arrays = {name: np.stack(values) for name, values in self.records.items()}
        with files.atomic_path(self.path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)

    def _record(self, epoch):
        state = {"epoch": np.asarray(epoch)}
        state["kernel"] = keras.ops.convert_to_numpy(self.dense.kernel)
        state["bias"] = keras.ops.convert_to_numpy(self.dense.bias)
        if self.bn is not None:
            for name in ("gamma", "beta", "moving_mean", "moving_variance"):
                state[name] = keras.ops.convert_to_numpy(getattr(self.bn, name))
        for name, value in state.items():
            self.records.setdefault(name, []).append(value)
