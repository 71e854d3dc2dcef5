"""The monitor's cost beside a training epoch: arrays vs a tf.data pipeline, float32 vs mixed
precision, TensorFlow vs JAX, side by side in one run.

    python benchmarks/bench_monitor.py [--samples 20000] [--cnn-samples 3000] [--rounds 3]

Each configuration runs in a process of its own (the backend is fixed when Keras starts);
the configurations take turns, `--rounds` times, and each number is the median over rounds.
A process builds the model under the dtype policy, trains 3 epochs with no callback ("epoch":
the median of the last two; the first compiles), then times `ModelMeasurer` on the training
inputs: the first measurement (input/patch moments of fixed-input layers, the streamed pass,
tracing the probe), light measurements (`deep=False`: fixed-input layers' alpha, every
layer's weights; what most epochs cost) and deep ones (`deep=True`: plus the streamed pass).
"share" is a measurement's time over the epoch's. `pass in predict` is the deep measurement's
time inside the probe's `predict_on_batch` (the model's own layers), the rest is the monitor's
arithmetic (conversion to float64, sums).

Configurations: every model x {arrays, tf.data} x {float32, mixed_float16, mixed_bfloat16}
on TensorFlow, and arrays/tf.data in float32 and arrays in mixed_float16 on JAX; plus
"mixed_float16, half-precision passes", the monitor as it was before it computed its passes
in float32, for comparison. Inputs are synthetic uint8 MNIST-shaped images (the cost does
not depend on the pixel values), scaled in the model by `Rescaling`.

Models:
  mlp   the paper's 784 -> 300 -> 10 with BN after each Dense, Adam, batch 128
  cnn   Rescaling -> Conv2D(16, 3, same) -> BN -> ReLU -> MaxPool -> Conv2D(32, 3, stride 2)
        -> BN -> ReLU -> GlobalAveragePooling -> Dense(10) -> BN -> softmax, same training
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIGS = [  # (backend, inputs, precision)
    ("tensorflow", "arrays", "float32"),
    ("tensorflow", "tf.data", "float32"),
    ("tensorflow", "arrays", "mixed_float16"),
    ("tensorflow", "arrays", "mixed_float16, half-precision passes"),
    ("tensorflow", "tf.data", "mixed_float16"),
    ("tensorflow", "arrays", "mixed_bfloat16"),
    ("jax", "arrays", "float32"),
    ("jax", "tf.data", "float32"),
    ("jax", "arrays", "mixed_float16"),
]
METRICS = ("epoch_s", "first_s", "light_s", "deep_s", "predict_s")


def build(kind):
    import keras

    layers = keras.layers
    if kind == "mlp":
        inputs = keras.Input((784,))
        x = layers.Rescaling(1 / 255)(inputs)
        x = layers.ReLU()(layers.BatchNormalization()(layers.Dense(300, name="hidden1")(x)))
        x = layers.BatchNormalization()(layers.Dense(10, name="output")(x))
        return keras.Model(inputs, layers.Softmax(dtype="float32")(x))
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(16, 3, padding="same", name="conv1"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, strides=2, name="conv2"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, name="head"),
            layers.BatchNormalization(),
            layers.Softmax(dtype="float32"),
        ]
    )


def child(kind, samples, inputs_kind, precision, repeats) -> dict:
    """One configuration, in this process (KERAS_BACKEND set by the parent)."""
    import keras

    from keras_bnreg import measurer as measurer_module

    half_passes = precision.endswith("half-precision passes")
    policy = precision.split(",")[0]
    if half_passes:  # the monitor before: its passes in the model's compute dtype
        measurer_module.computing_in_float32 = _unchanged
    rng = np.random.default_rng(0)
    shape = (samples, 784) if kind == "mlp" else (samples, 28, 28, 1)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    y = rng.integers(0, 10, size=samples)
    data = (x, y)
    if inputs_kind == "tf.data":
        import tensorflow as tf

        data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(4096, seed=0).batch(128),)
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(policy)
    model = build(kind)
    model.compile(keras.optimizers.Adam(0.001), "sparse_categorical_crossentropy")
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    fit_inputs = data if inputs_kind == "tf.data" else (x, y)
    model.fit(*fit_inputs, batch_size=None if inputs_kind == "tf.data" else 128,
              epochs=3, verbose=0, callbacks=[Timer()])  # fmt: skip
    measurer = measurer_module.ModelMeasurer(model, data[0])
    start = time.perf_counter()
    measurer.measure(deep=True)
    first = time.perf_counter() - start
    light, deep, predict = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        measurer.measure(deep=False)
        light.append(time.perf_counter() - start)
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.runcall(measurer.measure, deep=True)
        deep.append(time.perf_counter() - start)
        predict.append(_cumulative(profile, "predict_on_batch"))
    return {
        "epoch_s": statistics.median(times[1:]),
        "first_s": first,
        "light_s": statistics.median(light),
        "deep_s": statistics.median(deep),
        "predict_s": statistics.median(predict),
        "layers": [pair.name for pair in measurer.pairs],
    }


class _unchanged:  # noqa: N801 (stands in for the context manager)
    def __init__(self, model):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _cumulative(profile, name) -> float:
    """Seconds spent inside functions called `name` (cumulative, outermost calls only)."""
    stats = pstats.Stats(profile).stats
    return max(
        (cumulative for (_, _, function), (_, _, _, cumulative, _) in stats.items()
         if function == name),
        default=0.0,
    )  # fmt: skip


def run_child(kind, samples, config, repeats) -> dict:
    backend, inputs_kind, precision = config
    environment = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, __file__, "--child", kind, str(samples), inputs_kind, precision]
    completed = subprocess.run(
        [*command, str(repeats)], capture_output=True, text=True, env=environment, check=False
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} {config} failed:\n{completed.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000, help="MLP training inputs")
    parser.add_argument("--cnn-samples", type=int, default=3000, help="CNN training inputs")
    parser.add_argument("--rounds", type=int, default=3, help="turns of every configuration")
    parser.add_argument("--repeats", type=int, default=3, help="measurements timed per turn")
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, samples, inputs_kind, precision, repeats = args.child
        result = child(kind, int(samples), inputs_kind, precision, int(repeats))
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    if min(args.samples, args.cnn_samples, args.rounds, args.repeats) < 1:
        parser.error("--samples, --cnn-samples, --rounds and --repeats must be >= 1")
    sizes = {"mlp": args.samples, "cnn": args.cnn_samples}
    runs = {}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):  # configurations take turns: the machine's load is shared
        for kind in args.models:
            for config in CONFIGS:
                result = run_child(kind, sizes[kind], config, args.repeats)
                runs.setdefault((kind, config), []).append(result)
                load.append(os.getloadavg()[0])
    rows = []
    for (kind, config), results in runs.items():
        row = {"model": kind, "samples": sizes[kind], "backend": config[0]}
        row.update({"inputs": config[1], "precision": config[2]})
        row.update({m: statistics.median(r[m] for r in results) for m in METRICS})
        rows.append(row)
    print(f"load average (1 min) during the run: {min(load):.1f}-{max(load):.1f}")
    print(
        "| model | inputs | backend | inputs kind | precision | epoch (s) | first (s) "
        "| light (s) | light / epoch | deep (s) | deep / epoch | pass in predict (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} | {row['samples']} | {row['backend']} | {row['inputs']} "
            f"| {row['precision']} | {row['epoch_s']:.2f} | {row['first_s']:.2f} "
            f"| {row['light_s']:.3f} | {row['light_s'] / row['epoch_s']:.1%} "
            f"| {row['deep_s']:.2f} | {row['deep_s'] / row['epoch_s']:.0%} "
            f"| {row['predict_s']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
