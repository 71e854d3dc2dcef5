"""Epoch time of the paper's model: plain Keras fit vs this project's path, monitor on/off.

    python benchmarks/bench_training.py [--samples 60000] [--epochs 6] [--repeats 3] [--scaling]
                                        [--other <another checkout>]

Everything is measured side by side in one benchmark run, configurations interleaved, so
the ratios are comparable even on a loaded machine; each fit runs in a fresh process, as a
run does (fits that follow other fits in one process showed multi-second stalls). Data:
the genuine MNIST test digits (../shared/data/mnist-t10k) tiled to
`--samples` when present, else synthetic digits of MNIST's shape. The first epoch of each
fit (compilation) is excluded; the table shows the median of the others over all repeats.

Configurations:
  plain fit          the same Keras model, `model.fit` with NumPy arrays, steps_per_execution=1,
                     no XLA
  fast, no monitor   experiment.build_model + experiment.train_model (the path every run uses:
                     XLA, a whole epoch per compiled call)
  fast + monitor     the same with RegularizationMonitor as a run has it (deeper layers' data
                     pass every 10 epochs and at the last), and with that pass every epoch
  --other            the other checkout's "fast, no monitor" fit, its own code in its own
                     fresh process, interleaved with these: does a change make the epoch
                     slower, measured side by side
The floor: training FLOPs per epoch (6 x parameters x samples) divided by the GFLOP/s of a
float32 NumPy matmul of the first layer's shapes (128 x 784 @ 784 x 300), measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T10K = ROOT.parent / "shared" / "data" / "mnist-t10k"


def inputs_source(samples):
    """What load_inputs(samples) returns, in words."""
    if (T10K / "t10k-images-idx3-ubyte.gz").is_file():
        return f"genuine MNIST t10k digits tiled to {samples}"
    return f"synthetic MNIST-shaped digits ({samples})"


def load_inputs(samples, seed=0):
    """(x, y): float32 (samples, 784) in [0, 1] and labels."""
    from keras_bnreg import data

    images_path = T10K / "t10k-images-idx3-ubyte.gz"
    if images_path.is_file():
        images = data.read_idx(images_path)
        labels = data.read_idx(T10K / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
        reps = -(-samples // len(images))
        images, labels = np.tile(images, (reps, 1, 1))[:samples], np.tile(labels, reps)[:samples]
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from helpers import synthetic_digits

        images, labels = synthetic_digits(samples, seed)
    return images.reshape(len(images), -1), labels  # raw pixels: the model scales them


def benchmark_dataset(samples, test_samples):
    """The inputs as experiment.train_model takes them: training and validation splits."""
    x, y = load_inputs(samples)
    x_test, y_test = load_inputs(test_samples, seed=1)
    return SimpleNamespace(x_train=x, y_train=y, x_test=x_test, y_test=y_test)


def run_child(*arguments, script=__file__):
    """This script (or another checkout's copy) with `arguments` in a fresh process; its last
    stdout line, as JSON."""
    command = [sys.executable, str(script), *map(str, arguments)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def matmul_gflops(repeats=200):
    """GFLOP/s of a float32 (128 x 784) @ (784 x 300) NumPy matmul, best of 5 bursts."""
    rng = np.random.default_rng(0)
    a = rng.random((128, 784), dtype=np.float32)
    b = rng.random((784, 300), dtype=np.float32)
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * 128 * 784 * 300 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def epoch_walls(config, dataset, monitor_deep_every=None):
    """Per timed epoch: (wall seconds incl. validation and monitor, monitor seconds, deep?)."""
    import keras

    from keras_bnreg import experiment
    from keras_bnreg.monitor import RegularizationMonitor

    class Wall(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.epochs.append(
                (
                    time.perf_counter() - self.start,
                    logs.get("monitor_seconds", 0.0),
                    "output_alpha_mean" in logs,
                )
            )

    keras.utils.set_random_seed(config.seed)
    model = experiment.build_model(config, len(dataset.x_train))
    callbacks = []
    if monitor_deep_every is not None:
        callbacks.append(RegularizationMonitor(dataset.x_train, deep_every=monitor_deep_every))
    wall = Wall()  # last, so its epoch end comes after the monitor's
    experiment.train_model(model, dataset, config, callbacks + [wall], verbose=0)
    return wall.epochs[1:]  # the first epoch compiles


def fit_configurations(epochs):
    """(name, RunConfig, monitor deep_every or None) per benchmarked configuration."""
    from keras_bnreg.config import RunConfig

    fast = RunConfig(epochs=epochs)
    plain = fast.replace(steps_per_execution=1, jit_compile=False)
    return [
        ("plain fit (spe=1, no XLA)", plain, None),
        ("fast, no monitor", fast, None),
        (
            f"fast + monitor (default, deep every {fast.monitor_deep_every})",
            fast,
            fast.monitor_deep_every,
        ),
        ("fast + monitor (deep every epoch)", fast, 1),
    ]


def fit_point(index, samples, epochs, threads):
    """One fit of configuration `index` in this (fresh) process, as a run would be; prints
    its timed epochs as JSON."""
    from keras_bnreg import experiment

    experiment.set_threads(threads)
    _, config, deep = fit_configurations(epochs)[index]
    print(json.dumps(epoch_walls(config, benchmark_dataset(samples, 2000), deep)))


def peak_rss_mb():
    """This process's peak resident memory (VmHWM; unlike getrusage's ru_maxrss it is not
    inherited from the parent across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def scaling_point(samples, width):
    """One configuration of the scaling table, in this (fresh) process; prints JSON."""
    import keras

    from keras_bnreg import experiment
    from keras_bnreg.config import RunConfig
    from keras_bnreg.monitor import RegularizationMonitor

    dataset = benchmark_dataset(samples, 1000)
    x = dataset.x_train
    config = RunConfig(epochs=4, hidden=(width,))
    keras.utils.set_random_seed(0)
    model = experiment.build_model(config, samples)
    monitor = RegularizationMonitor(x, deep_every=1)
    timer = {"epochs": []}

    class Wall(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            timer["start"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - timer["start"] - logs["monitor_seconds"]
            timer["epochs"].append(seconds)

    experiment.train_model(model, dataset, config, [monitor, Wall()], verbose=0)
    light, deep = [], []
    for _ in range(3):
        start = time.perf_counter()
        monitor.measure(deep=False)
        light.append(time.perf_counter() - start)
        start = time.perf_counter()
        monitor.measure(deep=True)
        deep.append(time.perf_counter() - start)
    rss = peak_rss_mb()
    print(
        json.dumps(
            {
                "samples": samples,
                "width": width,
                "epoch": statistics.median(timer["epochs"][1:]),  # the first compiles
                "light": statistics.median(light),
                "deep": statistics.median(deep),
                "rss_mb": rss,
                "inputs_mb": x.nbytes / 2**20,
            }
        )
    )


def scaling_table(sample_sizes=(10000, 30000, 60000), widths=(300, 1000, 3000)):
    """Epoch and monitor time, peak RSS, per (samples, width); each in its own process."""
    rows = []
    for samples in sample_sizes:
        for width in widths:
            rows.append(run_child("--scaling-point", samples, width))
            print(f"  scaling {samples} x {width}: done", file=sys.stderr)
    unit = rows[0]["deep"] / (rows[0]["samples"] * rows[0]["width"])
    print(
        "\nscaling: epoch (training + validation, monitor excluded) and monitor cost; the "
        "deep pass should be linear in samples x width, memory bounded by its chunk"
    )
    header = (
        f"{'samples':>8}{'width':>7}{'epoch s':>9}{'monitor light s':>17}"
        f"{'monitor deep s':>16}{'deep / (N x W), vs first':>26}{'peak RSS MB':>13}"
        f"{'inputs MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row["deep"] / (row["samples"] * row["width"]) / unit
        print(
            f"{row['samples']:>8}{row['width']:>7}{row['epoch']:>9.3f}{row['light']:>17.4f}"
            f"{row['deep']:>16.3f}{ratio:>26.2f}{row['rss_mb']:>13.0f}{row['inputs_mb']:>11.0f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60000, help="training samples")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per fit (first excluded)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per configuration")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow threads")
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also the scaling table: 10k/30k/60k samples x width 300/1000/3000",
    )
    parser.add_argument("--scaling-only", action="store_true", help="only the scaling table")
    parser.add_argument(
        "--other",
        type=Path,
        help="another checkout: its 'fast, no monitor' fit joins the interleaved runs, so "
        "the two paths' epochs are compared in one benchmark run",
    )
    parser.add_argument("--scaling-point", type=int, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--fit-point", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scaling_point:
        return scaling_point(*args.scaling_point)
    if args.fit_point is not None:
        return fit_point(args.fit_point, args.samples, args.epochs, args.threads)
    if args.scaling_only:
        return scaling_table()
    if args.samples < 128 or args.epochs < 2 or args.repeats < 1:
        parser.error("need --samples >= 128, --epochs >= 2, --repeats >= 1")
    if args.other is not None:  # checked before the minutes of set-up below
        other_script = args.other.resolve() / "benchmarks" / "bench_training.py"
        if not other_script.is_file():
            parser.error(f"--other {args.other}: no benchmarks/bench_training.py there")

    from keras_bnreg import experiment

    configurations = fit_configurations(args.epochs)
    fast = configurations[1][1]
    source = inputs_source(args.samples)
    gflops = matmul_gflops()
    params = experiment.build_model(fast, args.samples).count_params()
    floor = 6 * params * args.samples / (gflops * 1e9)
    # (name, this checkout's configuration index, script that runs it)
    plan = [(name, index, __file__) for index, (name, _, _) in enumerate(configurations)]
    if args.other is not None:
        plan.insert(2, (f"{configurations[1][0]} [other checkout]", 1, other_script))
    results = {name: [] for name, _, _ in plan}
    for repeat in range(args.repeats):
        for name, index, script in plan:  # interleaved: load hits all alike
            threads = () if args.threads is None else ("--threads", args.threads)
            epochs = run_child(
                "--fit-point",
                index,
                "--samples",
                args.samples,
                "--epochs",
                args.epochs,
                *threads,
                script=script,
            )
            results[name].extend(epochs)
            print(
                f"  repeat {repeat + 1}/{args.repeats} {name}: "
                f"{', '.join(f'{e[0]:.3f}' for e in epochs)} s",
                file=sys.stderr,
            )

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"\nmachine: {os.cpu_count()} cores, {cpu}; data: {source}; batch 128; "
        f"epochs 2..{args.epochs} timed x {args.repeats} repeats per configuration"
        + (f"; other checkout: {args.other.resolve()}" if args.other is not None else "")
    )
    print(
        f"floor: {6 * params * args.samples / 1e9:.1f} GFLOP per epoch at {gflops:.0f} GFLOP/s"
        f" (float32 matmul 128x784 @ 784x300) = {floor:.3f} s"
    )
    stats = {}
    for name, _, _ in plan:
        for kind, keep in (
            ("", lambda e: True),
            (" [light]", lambda e: not e[2]),
            (" [deep]", lambda e: e[2]),
        ):
            epochs = [e for e in results[name] if keep(e)]
            if epochs and (kind == "" or name.startswith("fast + monitor (default")):
                walls = [e[0] for e in epochs]
                stats[name + kind] = (
                    statistics.median(walls),
                    min(walls),
                    max(walls),
                    statistics.median([e[1] for e in epochs]),
                )
    plain_s, plain_best = stats[configurations[0][0]][:2]
    off_s, off_best = stats[configurations[1][0]][:2]
    header = (
        f"{'configuration (epoch wall time)':<52}{'median s':>9}{'min-max':>14}"
        f"{'vs plain':>9}{'(best)':>8}{'vs floor':>9}{'monitor s':>10}{'monitor %':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, (mid, low, high, monitor) in stats.items():
        share = f"{monitor / off_s:+.1%}" if "+ monitor" in name else "-"
        print(
            f"{name:<52}{mid:>9.3f}{f'{low:.2f}-{high:.2f}':>14}{plain_s / mid:>8.2f}x"
            f"{plain_best / low:>7.2f}x{mid / floor:>8.2f}x{monitor:>10.4f}{share:>10}"
        )
    default = configurations[2][0]
    light, deep = stats[default + " [light]"][3], stats[default + " [deep]"][3]
    every = fast.monitor_deep_every
    amortised = ((every - 1) * light + deep) / every / off_s
    print(
        "\n(vs plain: ratio of medians; (best): ratio of the fastest epochs. monitor %: the "
        "monitor's own time, measured inside its callback, over the median epoch without it)"
    )
    print(
        f"speed-up vs plain fit: {plain_s / off_s:.2f}x (medians), {plain_best / off_best:.2f}x "
        f"(fastest epochs); epoch vs floor: {off_s / floor:.2f}x (median), "
        f"{off_best / floor:.2f}x (fastest); monitor: {light / off_s:+.1%} per light epoch, "
        f"{deep / off_s:+.1%} on a deep epoch, {amortised:+.1%} over a default {every}-epoch "
        f"run, {stats[configurations[3][0]][3] / off_s:+.1%} with deep every epoch"
    )
    if args.other is not None:
        other_s, other_best = stats[plan[2][0]][:2]
        print(
            f"this checkout / other checkout (fast, no monitor): {off_s / other_s:.2f}x "
            f"(medians), {off_best / other_best:.2f}x (fastest epochs); the other's epoch vs "
            f"floor: {other_s / floor:.2f}x (median), {other_best / floor:.2f}x (fastest)"
        )
    if args.scaling:
        scaling_table()


if __name__ == "__main__":
    main()
