"""Train the paper's BN network once and measure its per-node regularisation rate.

    python train.py --amplitude 4                      # in a checkout
    python -m keras_bnreg.train --amplitude 4          # anywhere the package is installed
    bnreg-train --amplitude 4 --snr 10 --epochs 20 --seed 3

Writes runs/<name>/ (config.json, history.csv, nodes.csv, summary.json) and
saved_models/<name>.keras. Exit codes: 0 done, 2 bad input (nothing touched), 3 diverged,
4 failed unexpectedly (traceback in runs/<name>/error.log), 130 interrupted.
"""

from __future__ import annotations

import sys

# Nothing here imports Keras or TensorFlow: --help and bad input answer at once.
from keras_bnreg import extras, quiet
from keras_bnreg.cli import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    add_config_flags,
    config_from_args,
    fail,
)
from keras_bnreg.config import ConfigError, RunConfig


def argparser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_flags(parser, RunConfig)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines or notices")
    return parser


def main(argv=None) -> int:
    args = argparser().parse_args(argv)
    try:
        config = config_from_args(RunConfig, args).validate().check_paths()
    except ConfigError as error:
        fail(error)
    notify = (lambda message: None) if args.quiet else _notice
    try:
        try:
            extras.require("training", "tensorflow")
            from keras_bnreg import data

            dataset = data.load_for(config, notify)
            _start_tensorflow_keras()
            from keras_bnreg import experiment, render

            result = experiment.run(
                config, dataset=dataset, verbose=0 if args.quiet else 1, notify=notify
            )
        except ValueError as error:  # ConfigError, DataError, MissingExtra: before any write
            fail(error)
    except KeyboardInterrupt:
        print("interrupted (nothing was written)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print()
    print(render.run_table(result.summary, config.amplitude, config.snr))
    print(dataset.notice())
    print(f"\nstatus: {result.status}; run directory: {result.run_dir}", end="")
    print(f"; model: {result.model_path}" if result.model_path else "")
    if result.status == "diverged":
        print("error: the loss became NaN; training stopped, no model saved", file=sys.stderr)
    elif result.status == "failed":
        log = result.run_dir / "error.log"
        reason = " ".join(str(result.summary["error"]).split())
        print(f"error: the run failed: {reason} (see {log})", file=sys.stderr)
    elif result.status == "interrupted":
        print("interrupted", file=sys.stderr)
    return result.exit_code


def _start_tensorflow_keras() -> None:
    """Keras, started on its TensorFlow backend without TensorFlow's start-up noise; a
    ValueError for another backend (the training path is a TensorFlow XLA program)."""
    quiet.tensorflow_start_up()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"training runs on Keras's TensorFlow backend; this process's backend is "
            f"{keras.backend.backend()!r} (KERAS_BACKEND or ~/.keras/keras.json): unset it "
            "for train.py (the monitor and the layers work on every backend)"
        )


def _notice(message) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
