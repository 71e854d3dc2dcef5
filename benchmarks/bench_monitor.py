"""The monitor's cost as a share of an ordinary training epoch: the paper's MLP and a CNN.

    python benchmarks/bench_monitor.py [--samples 60000] [--epochs 3] [--repeats 3]

For each model, one process: compile, train `--epochs` epochs with no callback (the first,
which compiles, is excluded; the median of the others is "epoch"), then time
`ModelMeasurer`'s set-up (once per run: input or patch moments of fixed-input layers) and
`--repeats` light measurements (`deep=False`: fixed-input layers' alpha and every layer's
weights, what most epochs cost) and deep ones (`deep=True`: plus the streamed inference
pass over all inputs, every `monitor_deep_every` epochs). Inputs: synthetic MNIST-shaped
uint8 images (the cost does not depend on the pixel values), scaled inside the model by a
`Rescaling` layer, as users' models do.

Models:
  mlp   the paper's 784 -> 300 -> 10 with BN after each Dense, a `Rescaling` in front,
        Adam, batch 128, a whole epoch per compiled call, XLA (as `experiment` trains)
  cnn   Rescaling -> Conv2D(16, 3, same) -> BN -> ReLU -> MaxPool -> Conv2D(32, 3, stride 2)
        -> BN -> ReLU -> GlobalAveragePooling -> Dense(10) -> BN -> softmax, same training
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(kind):
    import keras

    layers = keras.layers
    if kind == "mlp":
        inputs = keras.Input((784,))
        x = layers.Rescaling(1 / 255)(inputs)
        x = layers.ReLU()(layers.BatchNormalization()(layers.Dense(300, name="hidden1")(x)))
        x = layers.BatchNormalization()(layers.Dense(10, name="output")(x))
        return keras.Model(inputs, layers.Softmax()(x))
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
            layers.Softmax(),
        ]
    )


def measure(kind, samples, epochs, repeats) -> dict:
    import keras

    from keras_bnreg.monitor import ModelMeasurer

    rng = np.random.default_rng(0)
    shape = (samples, 784) if kind == "mlp" else (samples, 28, 28, 1)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    y = keras.utils.to_categorical(rng.integers(0, 10, size=samples), 10)
    keras.utils.set_random_seed(0)
    model = build(kind)
    model.compile(
        keras.optimizers.Adam(0.001),
        "categorical_crossentropy",
        steps_per_execution=-(-samples // 128),
        jit_compile=True,
    )
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0, callbacks=[Timer()])
    start = time.perf_counter()
    measurer = ModelMeasurer(model, x.astype(np.float32))
    setup = time.perf_counter() - start
    light, deep = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        measurer.measure(deep=False)
        light.append(time.perf_counter() - start)
        start = time.perf_counter()
        measurer.measure(deep=True)
        deep.append(time.perf_counter() - start)
    epoch = statistics.median(times[1:])
    return {
        "model": kind,
        "samples": samples,
        "layers": [pair.name for pair in measurer.pairs],
        "epoch_s": epoch,
        "setup_s": setup,
        "light_s": statistics.median(light),
        "deep_s": statistics.median(deep),
        "light_share": statistics.median(light) / epoch,
        "deep_share": statistics.median(deep) / epoch,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60000, help="training inputs")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed (first excluded)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements timed")
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.epochs < 2 or args.repeats < 1:
        parser.error("--samples >= 1, --epochs >= 2 and --repeats >= 1")
    rows = [measure(kind, args.samples, args.epochs, args.repeats) for kind in args.models]
    print(
        "| model | inputs | epoch (s) | set-up once (s) | light (s) | light / epoch "
        "| deep (s) | deep / epoch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} | {row['samples']} | {row['epoch_s']:.2f} | {row['setup_s']:.2f} "
            f"| {row['light_s']:.3f} | {row['light_share']:.1%} | {row['deep_s']:.2f} "
            f"| {row['deep_share']:.0%} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
