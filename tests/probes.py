"""Small programs the tests run in a fresh Python process: `python tests/probes.py NAME ARGS`
(`helpers.probe`). Kept in a module of their own, not in strings, so ruff checks them.

Each prints its result as JSON on its last line of stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys

# Modules whose import a probe reports: the heavy ones, and the package's optional parts.
WATCHED = (
    "keras",
    "tensorflow",
    "jax",
    "matplotlib",
    "scipy",
    "ray",
    "keras_bnreg.studies",
    "keras_bnreg.plots",
    "keras_bnreg.theory.plots",
    "keras_bnreg.experiment",
)


def _watched() -> list[str]:
    return sorted(name for name in WATCHED if name in sys.modules)


def modules_after(script, *argv):
    """Run `script ARGV...` as `python script` would (`__main__`), then report which
    `WATCHED` modules it imported (its exit code too)."""
    sys.argv = [script, *argv]
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        code = stop.code or 0
    print(json.dumps({"exit_code": code, "imported": _watched()}))


def clis_help():
    """`--help` of every command line of the installed package: the `WATCHED` modules
    imported (importing keras_bnreg first, as a user's script would)."""
    import keras_bnreg  # noqa: F401
    from keras_bnreg import inspect, reproduce, train

    for cli in (train, reproduce, inspect):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            cli.main(["--help"])
    print(json.dumps(_watched()))


def no_ray():
    """Importing the package, its run path and its sweep, and train.py --help: Ray or not."""
    import keras_bnreg  # noqa: F401
    import keras_bnreg.experiment  # noqa: F401
    import keras_bnreg.sweep  # noqa: F401

    sys.argv = ["train.py", "--help"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        runpy.run_path("train.py", run_name="__main__")
    print(json.dumps("ray" in sys.modules))


def score_saved_model(model_path, npz_path):
    """Load a saved model as a user would (plain Keras after `import keras_bnreg`) and score
    the raw test digits of `npz_path`; report accuracy, input scale and training seed."""
    import keras
    import numpy as np

    import keras_bnreg  # registers the project's BN layer

    model = keras.models.load_model(model_path)
    with np.load(npz_path) as archive:
        digits, labels = archive["x_test"], archive["y_test"]  # raw uint8, (N, 28, 28)
    assert digits.dtype == np.uint8
    flat = digits.reshape(len(digits), -1)  # the model takes (N, 784) raw pixel values
    accuracy = float(np.mean(model.predict(flat, verbose=0).argmax(axis=1) == labels))
    scale, seed = keras_bnreg.input_scale(model), keras_bnreg.training_seed(model)
    print(json.dumps({"accuracy": accuracy, "scale": scale, "seed": seed}))


def runs_in_one_worker(plan_json):
    """Run configs one after another in this process, as a sweep worker does.

    `plan`: `configs` (RunConfig dicts), `interrupt` (a run stopped by Ctrl-C after its
    first epoch: KeyboardInterrupt raised from a callback), `diverge` (a run whose first
    kernel is NaN when training starts). Prints `[name, status]` per run, then whether each
    run reused the compiled model of the one before.
    """
    from keras_bnreg import compiled, experiment
    from keras_bnreg.callbacks import HistoryWriter
    from keras_bnreg.config import RunConfig

    plan = json.loads(plan_json)
    current = {"name": None}
    on_epoch_end, train_model = HistoryWriter.on_epoch_end, experiment.train_model

    def interrupting_on_epoch_end(self, epoch, logs=None):
        on_epoch_end(self, epoch, logs)
        if current["name"] == plan["interrupt"]:
            raise KeyboardInterrupt

    def poisoned_train_model(model, *args, **kwargs):
        if current["name"] == plan["diverge"]:
            dense = next(layer for layer in model.layers if hasattr(layer, "kernel"))
            dense.kernel.assign(dense.kernel * float("nan"))
        return train_model(model, *args, **kwargs)

    HistoryWriter.on_epoch_end = interrupting_on_epoch_end
    experiment.train_model = poisoned_train_model
    reused = []
    for values in plan["configs"]:
        config = RunConfig.from_dict(values)
        current["name"] = config.name
        before = compiled._cached["model"]
        result = experiment.run(config, verbose=0, notify=lambda message: None)
        reused.append(before is not None and compiled._cached["model"] is before)
        print(json.dumps([config.name, result.status]))
    print(json.dumps(reused))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
