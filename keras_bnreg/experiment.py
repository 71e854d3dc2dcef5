"""One training run: a RunConfig in, a run directory out. Every caller goes through `run`.

Outputs (the contract reproduce.py, notebooks and users rely on), under `<out>/<name>/`:
`config.json`, `history.csv` (one row per epoch, rewritten atomically after each),
`nodes.csv` (first hidden layer) and `nodes_<layer>.csv`, `summary.json`, with
`record_kernels` `kernels.npz` (the first Dense kernel and BN state per epoch), and last,
for a completed run, `manifest.json` (size and sha256 of each file); the model goes to
`<models_dir>/<name>.keras`. A failed run adds `error.log` (the traceback).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_bnreg import compiled, data, files, manifest, measures, pairs, paper
from keras_bnreg.callbacks import (
    DivergenceGuard,
    EpochLine,
    EpochTimer,
    HistoryWriter,
    KernelRecorder,
)
from keras_bnreg.config import RunConfig
from keras_bnreg.models import build_for, float_dtype
from keras_bnreg.monitor import RegularizationMonitor

STATUS_EXIT_CODES = {"completed": 0, "diverged": 3, "failed": 4, "interrupted": 130}
HISTORY_BASE = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds")


@dataclass(frozen=True)
class RunResult:
    status: str  # completed | diverged | interrupted | failed
    run_dir: Path
    model_path: Path | None
    summary: dict

    @property
    def exit_code(self) -> int:
        return STATUS_EXIT_CODES[self.status]


def package_versions() -> dict:
    import scipy  # for the versions record only
    import tensorflow as tf  # loaded by Keras already; named here for its version

    from keras_bnreg import __version__

    versions = {
        "keras_bnreg": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    if "tensorflow_datasets" in sys.modules:
        versions["tensorflow_datasets"] = sys.modules["tensorflow_datasets"].__version__
    versions["platform"] = platform.platform()
    return versions


def history_columns(layer_names) -> list[str]:
    """history.csv columns: base metrics, the monitor's (`pairs.history_columns`), its time."""
    return [*HISTORY_BASE, *pairs.history_columns(list(layer_names)), "monitor_seconds"]


def set_threads(threads: int | None) -> None:
    """Limit TensorFlow's thread pools (must happen before TF runs its first op)."""
    if threads is None:
        return
    import tensorflow as tf  # thread pools: only when --threads is given

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        print("warning: TensorFlow already started; --threads ignored", file=sys.stderr)


def steps_per_execution(config: RunConfig, train_samples: int | None) -> int:
    """Training steps per compiled call: the config's, or by default a whole epoch
    (one call per epoch: no Python, callback or tf.data hand-off between steps)."""
    if config.steps_per_execution is not None:
        return config.steps_per_execution
    if train_samples is None:
        raise ValueError("steps_per_execution=None (a whole epoch) needs train_samples")
    return max(1, -(-train_samples // config.batch_size))


def build_model(config: RunConfig, train_samples: int | None = None):
    """The paper's MLP, compiled as the config says; `train_samples` sizes the default
    steps per execution (a whole epoch)."""
    with float_dtype(config.dtype):  # layers, optimizer, loss and metrics take it when built
        return _build_model(config, train_samples)


def _build_model(config: RunConfig, train_samples: int | None):
    model = build_for(config)
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    model.compile(
        optimizer=optimizers[config.optimizer](learning_rate=config.lr),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution(config, train_samples),
        jit_compile=config.jit_compile,
    )
    return model


def train_model(model, dataset, config: RunConfig, callbacks, verbose="auto", validation=None):
    """`model.fit` as every run does it: one-hot labels; validation on `validation`
    (`(x, y)`), by default the test split."""
    x_validation, y_validation = validation or (dataset.x_test, dataset.y_test)
    with float_dtype(config.dtype):  # fit casts float inputs to Keras's float type
        return _fit(model, dataset, config, callbacks, verbose, x_validation, y_validation)


def _fit(model, dataset, config, callbacks, verbose, x_validation, y_validation):
    return model.fit(
        dataset.x_train,
        keras.utils.to_categorical(dataset.y_train, 10),
        validation_data=(x_validation, keras.utils.to_categorical(y_validation, 10)),
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )


def run(config: RunConfig, *, dataset=None, verbose="auto", notify=None) -> RunResult:
    """Train one model and write its run directory; the one code path for a run.

    Everything is checked (settings, directories, data) before any file is touched. The
    run is written to a hidden staging directory `<out>/.<name>.partial-<pid>/` and its
    model to a temp file; only when the run ends (completed, diverged, interrupted or
    failed) do they replace the previous run's directory and model together, so a run
    directory and the model beside it always describe the same run. A run that ends
    without a model also removes the previous run's model. Leftovers of killed runs of
    the same name are removed first.

    Args:
        config: the run's configuration (validated here).
        dataset: a prepared `data.Dataset`; loaded from `config` when None.
        verbose: 0 for silence; otherwise one line per epoch on stdout (`EpochLine`).
        notify: callable for one-line notices (default: print to stderr).

    Raises:
        ConfigError, DataError: bad input, before anything is written.
    """
    notify = notify or _print_notice
    config.validate().check_paths()
    if dataset is None:
        dataset = data.load_for(config, notify)
    validation = None
    if config.validation_fraction > 0:
        dataset, validation = data.hold_out(dataset, config.validation_fraction, config.seed)
    set_threads(config.threads)
    remove_leftovers(config)
    started = time.time()
    staging = Path(config.out) / f".{config.name}.partial-{os.getpid()}"
    staging.mkdir(parents=True)
    new_model, layer_names = None, []
    status, error, rows, monitor_tables, test = "interrupted", None, [], {}, {}
    try:
        files.write_json(staging / "config.json", config.to_dict())
        # Seeds every random stream; a sweep worker reuses its compiled model for a run of
        # the same shape, reset to a fresh model's state (keras_bnreg/compiled.py).
        train_samples = len(dataset.x_train)
        model = compiled.model_for(
            config, train_samples, build_model, steps_per_execution(config, train_samples)
        )
        monitor = RegularizationMonitor(
            dataset.x_train,
            every=config.monitor_every,
            chunk_size=config.monitor_chunk,
            deep_every=config.monitor_deep_every,
            tensorboard_dir=None
            if config.tensorboard is None
            else Path(config.tensorboard) / "nodes",
        )
        layer_names = [pair.name for pair in pairs.find_pairs(model)]
        writer = HistoryWriter(staging / "history.csv", history_columns(layer_names))
        guard = DivergenceGuard()
        callbacks = [EpochTimer(), guard, monitor, writer]
        if config.record_kernels:
            first = pairs.primary(pairs.find_pairs(model))
            callbacks.append(KernelRecorder(staging / "kernels.npz", first.layer, first.bn))
        if verbose:
            callbacks.append(EpochLine(config.epochs))
        if config.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(config.tensorboard, histogram_freq=0))
        if verbose:
            notify(dataset.notice())
        try:
            train_model(model, dataset, config, callbacks, verbose=0, validation=validation)
        finally:
            rows = getattr(writer, "rows", [])
        status = "diverged" if guard.diverged else "completed"
        if status == "completed":
            test = evaluate(model, dataset) if validation is not None else test_scores(rows)
            monitor_tables = monitor.latest
            write_node_tables(staging, monitor_tables, layer_names)
            if config.save_model:
                new_model = save_model_beside(model, _model_path(config))
    except KeyboardInterrupt:
        status = "interrupted"
    except Exception as problem:  # recorded in the run directory, not a bare traceback
        status, error = "failed", f"{type(problem).__name__}: {problem}"
        (staging / "error.log").write_text(traceback.format_exc())
    with _interrupts_deferred():
        saved = None if new_model is None else _model_path(config)
        summary = _summary(config, dataset, status, rows, saved, started, test)
        summary["layers"] = layer_names  # measured layers in data flow; the first: nodes.csv
        if error is not None:
            summary["error"] = error
        files.write_json(staging / "summary.json", summary)
        if status == "completed":
            manifest.write(staging)  # last: a run without it is not complete (manifest.py)
        model_path = _commit(config, staging, new_model)
    return RunResult(status, Path(config.out) / config.name, model_path, summary)


def evaluate(model, dataset) -> dict:
    """Test loss and accuracy of `model` on the dataset's test split."""
    test_loss, test_accuracy = model.evaluate(
        dataset.x_test,
        keras.utils.to_categorical(dataset.y_test, 10),
        batch_size=1024,
        verbose=0,
    )
    return {"test_loss": float(test_loss), "test_accuracy": float(test_accuracy)}


def test_scores(rows) -> dict:
    """Test loss and accuracy when the test split is fit's validation data (the default):
    the last epoch's validation scored this very model on it, so no second pass is made."""
    return {"test_loss": rows[-1]["val_loss"], "test_accuracy": rows[-1]["val_accuracy"]}


def write_node_tables(run_dir, tables, layer_names) -> None:
    """`nodes.csv` for the first hidden layer, `nodes_<layer>.csv` for the others."""
    for name, table in tables.items():
        path = Path(run_dir) / pairs.nodes_filename(name, layer_names)
        rows = [
            {"node": j, **{c: float(table[c][j]) for c in table}}
            for j in range(len(table["alpha"]))
        ]
        files.write_csv(path, rows, ["node", *measures.NODE_COLUMNS])


def save_model_beside(model, path) -> Path:
    """Save to a temp file beside `path` (renamed onto it when the run is committed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.keras", dir=path.parent)
    os.close(handle)
    try:
        model.save(tmp)
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def remove_leftovers(config: RunConfig) -> None:
    """Remove what killed runs of this name left: staging directories of processes that
    no longer exist, and temp model files."""
    out, name = Path(config.out), config.name
    for staging in out.glob(f".{name}.partial-*"):
        pid = staging.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _process_alive(int(pid))):
            shutil.rmtree(staging, ignore_errors=True)
    for aside in out.glob(f".{name}.replaced-*"):
        shutil.rmtree(aside, ignore_errors=True)
    for tmp in Path(config.models_dir).glob(f".{name}.keras.*.tmp.keras"):
        tmp.unlink(missing_ok=True)


def _commit(config, staging, new_model) -> Path | None:
    """The new run replaces the previous one: its model first, then its directory."""
    final, model_path = Path(config.out) / config.name, _model_path(config)
    if new_model is not None:
        os.replace(new_model, model_path)
    else:
        model_path.unlink(missing_ok=True)  # it described the previous run
    if final.exists():
        aside = final.with_name(f".{config.name}.replaced-{os.getpid()}")
        os.replace(final, aside)
        os.replace(staging, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staging, final)
    return model_path if new_model is not None else None


def _model_path(config) -> Path:
    return Path(config.models_dir) / f"{config.name}.keras"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C while the summary is written and the run is committed (a few ms)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_notice(message) -> None:
    print(message, file=sys.stderr, flush=True)


def _summary(config, dataset, status, rows, model_path, started, test) -> dict:
    last = rows[-1] if rows else {}
    reference = paper.reference_row(config.amplitude, config.snr)
    return {
        "status": status,
        "run_name": config.name,
        "epochs_completed": len(rows),
        "final": {**{k: v for k, v in last.items() if k not in ("epoch",)}, **test},
        "data": dataset.describe(),
        "paper": None if reference is None else {"table": reference[0], **reference[1]},
        "model_path": None if model_path is None else str(model_path),
        "versions": package_versions(),
        "wall_seconds": time.time() - started,
    }
