"""Train the paper's BN network once and measure its per-node regularisation rate.

    python train.py --amplitude 4
    python train.py --amplitude 4 --snr 10 --epochs 20 --seed 3

Writes runs/<name>/ (config.json, history.csv, nodes.csv, summary.json) and
saved_models/<name>.keras. Exit codes: 0 done, 2 bad input, 3 diverged, 130 interrupted.
"""

from __future__ import annotations

import sys

from keras_bnreg.cli import ArgumentParser, fail
from keras_bnreg.config import OPTIMIZER_NAMES, ConfigError, RunConfig


def argparser() -> ArgumentParser:
    defaults = RunConfig()
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add(
        "--data",
        default=defaults.data,
        help="auto | tfds | bundled | path to mnist.npz | directory of MNIST IDX files "
        "(default: auto = prepared tfds, else tfds download if reachable, else bundled)",
    )
    add("--data-dir", default=None, help="TFDS data directory (default: tfds's own)")
    add(
        "--amplitude",
        type=float,
        default=defaults.amplitude,
        help="data amplitude A: pixels are image/255*A (default: 1)",
    )
    add("--snr", type=float, default=None, help="add Gaussian noise at this SNR (default: none)")
    add(
        "--noise-seed", type=int, default=defaults.noise_seed, help="seed of the noise (default: 0)"
    )
    add(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help="epochs (default: 10; the paper states none)",
    )
    add("--batch-size", type=int, default=defaults.batch_size, help="batch size (default: 128)")
    add("--lr", type=float, default=defaults.lr, help="learning rate (default: 0.1)")
    add(
        "--optimizer",
        choices=OPTIMIZER_NAMES,
        default=defaults.optimizer,
        help="optimizer (default: adam)",
    )
    add(
        "--init-std",
        type=float,
        default=defaults.init_std,
        help="std of the Gaussian kernel init (default: 0.01)",
    )
    add(
        "--bn-epsilon",
        type=float,
        nargs="+",
        default=list(defaults.bn_epsilon),
        help="BN epsilon: one value for all BN layers or one per BN layer (default: 1e-3)",
    )
    add(
        "--bn-momentum",
        type=float,
        default=defaults.bn_momentum,
        help="BN momentum (default: 0.99)",
    )
    add("--no-bn", action="store_true", help="leave out BN (the explicit-L2 baseline)")
    add(
        "--l2",
        type=float,
        default=defaults.l2,
        help="explicit L2 rate on every kernel: loss += l2 * sum(w^2) (default: 0)",
    )
    add(
        "--validation-fraction",
        type=float,
        default=defaults.validation_fraction,
        help="validate on this held-out part of the training split instead of the test "
        "split (default: 0, validate on the test split)",
    )
    add(
        "--hidden",
        type=int,
        nargs="+",
        default=list(defaults.hidden),
        help="hidden widths, one per layer (default: 300)",
    )
    add("--seed", type=int, default=defaults.seed, help="random seed (default: 0)")
    add(
        "--monitor-every",
        type=int,
        default=defaults.monitor_every,
        help="measure alpha and norms every N epochs (default: 1)",
    )
    add(
        "--monitor-deep-every",
        type=int,
        default=defaults.monitor_deep_every,
        help="measure deeper layers' data-based alpha every N epochs and at the last "
        "(each costs one forward pass over the training inputs; default: 10)",
    )
    add(
        "--monitor-chunk",
        type=int,
        default=defaults.monitor_chunk,
        help="rows per chunk of the monitor's pass (default: 8192)",
    )
    add("--tensorboard", default=None, metavar="DIR", help="write TensorBoard logs to DIR")
    add("--out", default=defaults.out, help="directory of run directories (default: runs)")
    add(
        "--models-dir",
        default=defaults.models_dir,
        help="where .keras files go (default: saved_models)",
    )
    add("--run-name", default=None, help="run name (default: amp<A>_seed<S>[_snr<SNR>])")
    add("--no-save-model", action="store_true", help="do not write the .keras file")
    add("--threads", type=int, default=None, help="TensorFlow threads (default: all cores)")
    add(
        "--steps-per-execution",
        type=int,
        default=defaults.steps_per_execution,
        help="training steps per compiled call (default: a whole epoch; smaller for "
        "a finer progress bar)",
    )
    add("--no-jit", action="store_true", help="do not XLA-compile the training step")
    add("--quiet", action="store_true", help="no progress bar")
    return parser


def config_from_args(args) -> RunConfig:
    return RunConfig(
        data=args.data,
        data_dir=args.data_dir,
        amplitude=args.amplitude,
        snr=args.snr,
        noise_seed=args.noise_seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        init_std=args.init_std,
        bn_epsilon=tuple(args.bn_epsilon),
        bn_momentum=args.bn_momentum,
        hidden=tuple(args.hidden),
        seed=args.seed,
        monitor_every=args.monitor_every,
        monitor_chunk=args.monitor_chunk,
        monitor_deep_every=args.monitor_deep_every,
        batchnorm=not args.no_bn,
        l2=args.l2,
        validation_fraction=args.validation_fraction,
        tensorboard=args.tensorboard,
        out=args.out,
        models_dir=args.models_dir,
        run_name=args.run_name,
        save_model=not args.no_save_model,
        threads=args.threads,
        steps_per_execution=args.steps_per_execution,
        jit_compile=not args.no_jit,
    )


def main(argv=None) -> int:
    args = argparser().parse_args(argv)
    try:
        config = config_from_args(args).validate()
    except ConfigError as error:
        fail(error)
    try:
        from keras_bnreg import experiment, report
        from keras_bnreg.data import DataError

        try:
            result = experiment.run(config, verbose=0 if args.quiet else "auto")
        except (ConfigError, DataError) as error:
            fail(error)
        except OSError as error:
            fail(f"cannot write results: {error}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print()
    print(report.run_table(result.summary, config.amplitude, config.snr))
    print(f"\nstatus: {result.status}; run directory: {result.run_dir}", end="")
    print(f"; model: {result.model_path}" if result.model_path else "")
    if result.status == "diverged":
        print("error: the loss became NaN; training stopped, no model saved", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
