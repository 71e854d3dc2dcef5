"""Train the paper's BN network once and measure its per-node regularisation rate.

    python train.py --amplitude 4
    python train.py --amplitude 4 --snr 10 --epochs 20 --seed 3

Writes runs/<name>/ (config.json, history.csv, nodes.csv, summary.json) and
saved_models/<name>.keras. Exit codes: 0 done, 2 bad input (nothing touched), 3 diverged,
4 failed unexpectedly (traceback in runs/<name>/error.log), 130 interrupted.
"""

from __future__ import annotations

import os
import sys

# Answer --help and bad input without TensorFlow's start-up (seconds): the package then
# imports Keras only when a model is built (see keras_bnreg/__init__.py).
if "keras_bnreg" not in sys.modules:
    os.environ["KERAS_BNREG_DEFER_KERAS"] = "1"  # read and removed by keras_bnreg/__init__.py

from keras_bnreg import quiet  # noqa: E402
from keras_bnreg.cli import (  # noqa: E402
    EXIT_INTERRUPTED,
    ArgumentParser,
    add_config_flags,
    config_from_args,
    fail,
)
from keras_bnreg.config import ConfigError, RunConfig  # noqa: E402


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
        from keras_bnreg import data

        try:
            dataset = data.load_for(config, notify)
        except data.DataError as error:
            fail(error)
        quiet.tensorflow_start_up()
        from keras_bnreg import experiment, report

        try:
            result = experiment.run(
                config, dataset=dataset, verbose=0 if args.quiet else 1, notify=notify
            )
        except (ConfigError, data.DataError) as error:
            fail(error)
    except KeyboardInterrupt:
        print("interrupted (nothing was written)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print()
    print(report.run_table(result.summary, config.amplitude, config.snr))
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


def _notice(message) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
