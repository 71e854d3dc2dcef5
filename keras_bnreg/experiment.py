"""One training run: a RunConfig in, a run directory out. Every caller goes through `run`.

Outputs (the contract reproduce.py, notebooks and users rely on), under `<out>/<name>/`:
`config.json`, `history.csv` (one row per epoch, rewritten atomically after each),
`nodes.csv` (first hidden layer) and `nodes_<layer>.csv`, `summary.json`, with
`record_kernels` `kernels.npz` (the first Dense kernel and BN state per epoch), and last,
for a completed run, `manifest.json` (size and sha256 of each file); the model goes to
`<models_dir>/<name>.keras`.
"""

from __future__ import annotations

import contextlib
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_bnreg import compiled, data, files, manifest, measures, pairs, paper
from keras_bnreg.callbacks import DivergenceGuard, EpochTimer, HistoryWriter, KernelRecorder
from keras_bnreg.config import RunConfig
from keras_bnreg.models import build_mlp
from keras_bnreg.monitor import RegularizationMonitor

STATUS_EXIT_CODES = {"completed": 0, "diverged": 3, "interrupted": 130}
HISTORY_BASE = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds")


@dataclass(frozen=True)
class RunResult:
    status: str  # completed | diverged | interrupted
    run_dir: Path
    model_path: Path | None
    summary: dict

    @property
    def exit_code(self) -> int:
        return STATUS_EXIT_CODES[self.status]


def package_versions() -> dict:
    import scipy
    import tensorflow as tf

    versions = {
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
    import tensorflow as tf

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


@contextlib.contextmanager
def float_dtype(dtype):
    """Keras's float type and dtype policy set to `dtype` ("float32" or "float64") inside
    the block, restored after: what is built there (layers and their variables, hence the
    optimizer's slots; `keras.Input`; the loss) takes it, and `fit` casts inputs to it."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def build_model(config: RunConfig, train_samples: int | None = None):
    """The paper's MLP, compiled as the config says; `train_samples` sizes the default
    steps per execution (a whole epoch)."""
    with float_dtype(config.dtype):  # layers, optimizer, loss and metrics take it when built
        return _build_model(config, train_samples)


def _build_model(config: RunConfig, train_samples: int | None):
    model = build_mlp(
        config.hidden,
        init_std=config.init_std,
        bn_epsilon=config.epsilons,
        bn_momentum=config.bn_momentum,
        seed=config.seed,
        batchnorm=config.batchnorm,
        l2=config.l2,
    )
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

    Args:
        config: the run's configuration (validated here).
        dataset: a prepared `data.Dataset`; loaded from `config` when None.
        verbose: Keras's `fit` verbosity.
        notify: callable for one-line notices (default: print to stderr).

    Raises:
        ConfigError, DataError: bad input, before anything is written.
    """
    config.validate()
    set_threads(config.threads)
    if dataset is None:
        dataset = data.load(
            config.data,
            amplitude=config.amplitude,
            snr=config.snr,
            noise_seed=config.noise_seed,
            seed=config.seed,
            data_dir=config.data_dir,
            notify=notify,
            dtype=config.dtype,
        )
    validation = None
    if config.validation_fraction > 0:
        dataset, validation = data.hold_out(dataset, config.validation_fraction, config.seed)
    started = time.time()
    run_dir = Path(config.out) / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("manifest.json", "summary.json", "history.csv", "nodes.csv", "kernels.npz"):
        (run_dir / stale).unlink(missing_ok=True)
    for stale in run_dir.glob("nodes_*.csv"):
        stale.unlink()
    files.write_json(run_dir / "config.json", config.to_dict())

    # Seeds every random stream; a sweep worker reuses its compiled model for a run of the
    # same shape, reset to a fresh model's state (keras_bnreg/compiled.py).
    train_samples = len(dataset.x_train)
    model = compiled.model_for(
        config, train_samples, build_model, steps_per_execution(config, train_samples)
    )
    monitor = RegularizationMonitor(
        dataset.x_train,
        every=config.monitor_every,
        chunk_size=config.monitor_chunk,
        deep_every=config.monitor_deep_every,
        tensorboard_dir=None if config.tensorboard is None else Path(config.tensorboard) / "nodes",
    )
    layer_names = [pair.name for pair in pairs.find_pairs(model)]
    writer = HistoryWriter(run_dir / "history.csv", history_columns(layer_names))
    guard = DivergenceGuard()
    callbacks = [EpochTimer(), guard, monitor, writer]
    if config.record_kernels:
        first = pairs.primary(pairs.find_pairs(model))
        callbacks.append(KernelRecorder(run_dir / "kernels.npz", first.layer, first.bn))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(config.tensorboard, histogram_freq=0))

    status = "completed"
    try:
        train_model(model, dataset, config, callbacks, verbose=verbose, validation=validation)
        if guard.diverged:
            status = "diverged"
    except KeyboardInterrupt:
        status = "interrupted"

    model_path = None
    test = {}
    if status == "completed":
        try:
            test_loss, test_accuracy = model.evaluate(
                dataset.x_test,
                keras.utils.to_categorical(dataset.y_test, 10),
                batch_size=1024,
                verbose=0,
            )
            test = {"test_loss": float(test_loss), "test_accuracy": float(test_accuracy)}
            for name, table in monitor.latest.items():
                path = run_dir / pairs.nodes_filename(name, layer_names)
                rows = [
                    {"node": j, **{c: float(table[c][j]) for c in table}}
                    for j in range(len(table["alpha"]))
                ]
                files.write_csv(path, rows, ["node", *measures.NODE_COLUMNS])
            if config.save_model:
                model_path = Path(config.models_dir) / f"{config.name}.keras"
                with files.atomic_path(model_path, suffix=".keras") as tmp:
                    model.save(tmp)
        except KeyboardInterrupt:  # Ctrl-C after training: still a run with a status
            status, test, model_path = "interrupted", {}, None
    summary = _summary(config, dataset, status, writer.rows, model_path, started, test)
    files.write_json(run_dir / "summary.json", summary)
    if status == "completed":
        manifest.write(run_dir)  # last: a run without it is not complete (keras_bnreg/manifest.py)
    return RunResult(status, run_dir, model_path, summary)


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
