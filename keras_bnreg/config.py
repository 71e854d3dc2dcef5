"""One typed configuration for a training run, with its validation."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field

from keras_bnreg import checks

OPTIMIZER_NAMES = ("adam", "sgd")
DTYPE_NAMES = ("float32", "float64")
ARCH_NAMES = ("mlp", "cnn")  # models.ARCHITECTURES


INPUT_DIM = 784  # 28 x 28 pixels, flattened


class ConfigError(checks.InputError):
    """A configuration value is out of range; the message is one user-facing line."""


def setting(default, help, *, type=None, nargs=None, choices=None, flag=None, metavar=None):
    """A RunConfig field with what its command-line flag needs (train.py generates its
    flags from these): the help text, the element type, `nargs`, `choices`, the flag name
    (default `--<field-name>`; a boolean that defaults to True becomes `--no-<name>`)."""
    metadata = {"help": help, "type": type, "nargs": nargs, "choices": choices}
    metadata.update(flag=flag, metavar=metavar)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a training run. Written as `config.json` beside its results.

    Each field's metadata (see `setting`) holds its meaning and units; `train.py --help`
    prints them.
    """

    # data
    data: str = setting(
        "auto",
        "auto | tfds | bundled | path to mnist.npz | directory of MNIST IDX files "
        "(auto = prepared tfds, else tfds download if reachable, else bundled)",
        type=str,
    )
    data_dir: str | None = setting(
        None, "TFDS data directory (default: tfds's own / TFDS_DATA_DIR)", type=str
    )
    amplitude: float = setting(
        1.0,
        "data amplitude A: the model sees image / 255 * A (its input_scaling layer)",
        type=float,
    )
    snr: float | None = setting(
        None, "add fixed Gaussian noise at this signal-to-noise ratio (default: none)", type=float
    )
    noise_seed: int = setting(0, "seed of the fixed noisy data set", type=int)
    # model
    hidden: tuple[int, ...] = setting(
        (300,), "hidden widths, one per Dense+BN+ReLU block", type=int, nargs="+"
    )
    arch: str = setting(
        "mlp",
        "architecture: mlp (the paper's), or cnn (hidden = channels of 3x3 Conv2D+BN blocks)",
        type=str,
        choices=ARCH_NAMES,
    )
    init_std: float = setting(0.01, "std of the Gaussian kernel initialiser", type=float)
    bn_epsilon: tuple[float, ...] = setting(
        (1e-3,),
        "BN epsilon: one value for every BN layer, or one per BN layer",
        type=float,
        nargs="+",
    )
    bn_momentum: float = setting(0.99, "BN moving-statistics momentum", type=float)
    batchnorm: bool = setting(True, "leave out BN (the explicit-L2 baseline)", flag="--no-bn")
    l2: float = setting(
        0.0, "explicit L2 rate on every kernel: loss += l2 * sum(w^2) per layer", type=float
    )
    # optimisation
    optimizer: str = setting("adam", "optimizer", type=str, choices=OPTIMIZER_NAMES)
    lr: float = setting(0.1, "learning rate (the paper's Adam 0.1)", type=float)
    batch_size: int = setting(128, "samples per step", type=int)
    epochs: int = setting(10, "epochs (the paper states none)", type=int)
    seed: int = setting(0, "random seed: weight init, shuffling, bundled split", type=int)
    validation_fraction: float = setting(
        0.0,
        "validate on this held-out part of the training split instead of the test split "
        "(0: validate on the test split)",
        type=float,
    )
    # measurement
    monitor_every: int = setting(
        1, "measure alpha and norms every N epochs (and at the last)", type=int
    )
    monitor_chunk: int = setting(8192, "rows per chunk of the monitor's passes", type=int)
    monitor_deep_every: int = setting(
        10,
        "measure deeper layers' data-based alpha every N epochs and at the last "
        "(each costs one forward pass over the training inputs)",
        type=int,
    )
    tensorboard: str | None = setting(
        None, "write TensorBoard scalars and per-node histograms to DIR", type=str, metavar="DIR"
    )
    # speed
    steps_per_execution: int | None = setting(
        None, "training steps per compiled call (default: a whole epoch)", type=int
    )
    jit_compile: bool = setting(True, "do not XLA-compile the training step", flag="--no-jit")
    threads: int | None = setting(None, "TensorFlow threads (default: all cores)", type=int)
    dtype: str = setting("float32", "inputs, weights and arithmetic", type=str, choices=DTYPE_NAMES)
    # outputs
    out: str = setting("runs", "directory of run directories: <out>/<run name>/", type=str)
    models_dir: str = setting(
        "saved_models", "where the .keras files go: <models-dir>/<run name>.keras", type=str
    )
    run_name: str | None = setting(None, "run name (default: amp<A>_seed<S>[_snr<SNR>])", type=str)
    save_model: bool = setting(True, "do not write the .keras file", flag="--no-save-model")
    record_kernels: bool = setting(
        False,
        "write the first Dense kernel and BN state per epoch to <run>/kernels.npz "
        "(about 11 x 784 x width values)",
    )
    # provenance (labels only: they never change what a run computes; no flags)
    study: str | None = None  # the study that asked for this run (keras_bnreg.studies); None: none
    role: dict = field(default_factory=dict)  # its part in that study, e.g. {"group": "sgd"}

    extra: dict = field(default_factory=dict)  # free-form notes carried into config.json

    @property
    def n_bn_layers(self) -> int:
        return len(self.hidden) + 1

    @property
    def epsilons(self) -> tuple[float, ...]:
        """The BN epsilon of each BN layer, in order (first hidden ... output)."""
        if len(self.bn_epsilon) == 1:
            return tuple(self.bn_epsilon) * self.n_bn_layers
        return tuple(self.bn_epsilon)

    @property
    def name(self) -> str:
        """The run's name: `run_name`, else `amp<A>_seed<S>` plus `_snr<SNR>`."""
        if self.run_name:
            return self.run_name
        name = f"amp{self.amplitude:g}_seed{self.seed}"
        if self.snr is not None:
            name += f"_snr{self.snr:g}"
        return name

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able resolved config (tuples as lists, derived name and epsilons included)."""
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden)
        out["bn_epsilon"] = list(self.bn_epsilon)
        out["resolved_run_name"] = self.name
        out["resolved_bn_epsilons"] = list(self.epsilons)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in names}
        for key in ("hidden", "bn_epsilon"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def validate(self) -> RunConfig:
        """Raise ConfigError naming the first bad value; return self when all are valid.

        Pure: reads no file and imports no TensorFlow (the CLIs call it before either).
        """
        checks.input_scale(self.amplitude, ConfigError)
        if self.snr is not None:
            checks.positive_finite("snr", self.snr, ConfigError)
        checks.float32_positive("lr", self.lr, ConfigError)
        checks.float32_positive("init_std", self.init_std, ConfigError)
        for name in (
            "epochs",
            "batch_size",
            "monitor_every",
            "monitor_chunk",
            "monitor_deep_every",
        ):
            checks.at_least_one(name, getattr(self, name), ConfigError)
        if self.steps_per_execution is not None:
            checks.at_least_one("steps_per_execution", self.steps_per_execution, ConfigError)
        if self.threads is not None:
            checks.at_least_one("threads", self.threads, ConfigError)
        checks.seed("seed", self.seed, ConfigError)
        checks.seed("noise_seed", self.noise_seed, ConfigError)
        if not self.hidden:
            raise ConfigError("hidden needs at least one width. Received: none")
        for width in self.hidden:
            checks.at_least_one("hidden width", width, ConfigError)
        checks.parameters_fit_in_memory(self.hidden, INPUT_DIM, ConfigError)
        if len(self.bn_epsilon) not in (1, self.n_bn_layers):
            raise ConfigError(
                f"bn_epsilon takes 1 value or one per BN layer ({self.n_bn_layers}). "
                f"Received: {len(self.bn_epsilon)} values"
            )
        for epsilon in self.bn_epsilon:
            checks.float32_positive("bn_epsilon", epsilon, ConfigError)
        if not (math.isfinite(self.l2) and 0 <= self.l2 <= checks.FLOAT32_MAX):
            raise ConfigError(f"l2 must be a finite number >= 0. Received: {self.l2!r}")
        checks.fraction("validation_fraction", self.validation_fraction, ConfigError)
        checks.fraction("bn_momentum", self.bn_momentum, ConfigError)
        if self.optimizer not in OPTIMIZER_NAMES:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}. "
                f"Received: {self.optimizer!r}"
            )
        if self.arch not in ARCH_NAMES:
            raise ConfigError(
                f"arch must be one of {', '.join(ARCH_NAMES)}. Received: {self.arch!r}"
            )
        if self.dtype not in DTYPE_NAMES:
            raise ConfigError(
                f"dtype must be one of {', '.join(DTYPE_NAMES)}. Received: {self.dtype!r}"
            )
        if self.run_name is not None and (
            not self.run_name
            or "/" in self.run_name
            or self.run_name.startswith(".")
            or self.run_name != self.run_name.strip()
        ):
            raise ConfigError(f"run name must be a plain file name. Received: {self.run_name!r}")
        return self

    def check_paths(self) -> RunConfig:
        """Raise ConfigError unless every directory the run writes is (or can be made) a
        writable directory. Creates nothing."""
        checks.writable_directory("--out", self.out, ConfigError)
        if self.save_model:
            checks.writable_directory("--models-dir", self.models_dir, ConfigError)
        if self.tensorboard is not None:
            checks.writable_directory("--tensorboard", self.tensorboard, ConfigError)
            if importlib.util.find_spec("tensorboard") is None:
                raise ConfigError(
                    "--tensorboard needs the tensorboard package (pip install tensorboard). "
                    f"Received: {self.tensorboard!r}"
                )
        return self
