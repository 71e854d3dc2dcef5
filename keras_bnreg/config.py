"""One typed configuration for a training run, with its validation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

OPTIMIZER_NAMES = ("adam", "sgd")
DTYPE_NAMES = ("float32", "float64")


class ConfigError(ValueError):
    """A configuration value is out of range; the message is one user-facing line."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a training run. Written as `config.json` beside its results."""

    # data
    data: str = "auto"  # "auto", "tfds", "bundled", or a path to mnist.npz / an IDX directory
    data_dir: str | None = None  # TFDS data directory (None: tfds default / TFDS_DATA_DIR)
    amplitude: float = 1.0  # A: pixels are image / 255 * A
    snr: float | None = None  # signal-to-noise ratio of added Gaussian noise; None: clean
    noise_seed: int = 0  # seed of the fixed noisy data set
    # model
    hidden: tuple[int, ...] = (300,)  # widths of the hidden Dense+BN+ReLU blocks
    init_std: float = 0.01  # std of the Gaussian kernel initialiser
    bn_epsilon: tuple[float, ...] = (1e-3,)  # one value for every BN layer, or one per BN layer
    bn_momentum: float = 0.99  # BN moving-statistics momentum (Keras default)
    batchnorm: bool = True  # BN after every Dense layer; False: the explicit-L2 baseline
    l2: float = 0.0  # explicit L2 rate on every kernel (loss += l2 * sum(w^2) per layer)
    # optimisation
    optimizer: str = "adam"  # one of OPTIMIZER_NAMES
    lr: float = 0.1  # learning rate (the paper's Adam 0.1)
    batch_size: int = 128  # samples per step
    epochs: int = 10  # the paper states none
    seed: int = 0  # keras.utils.set_random_seed: init, shuffling
    validation_fraction: float = 0.0  # >0: validate on this held-out part of the training
    #   split instead of the test split (the test split is then only scored at the end)
    # measurement
    monitor_every: int = 1  # measure alpha and norms every N epochs (and at the last)
    monitor_chunk: int = 8192  # rows per chunk of the monitor's streamed passes
    monitor_deep_every: int = 10  # deeper layers' data-based alpha every N epochs and the last
    tensorboard: str | None = None  # directory for TensorBoard scalars and histograms
    # speed
    steps_per_execution: int | None = None  # training steps per compiled call; None: an epoch
    jit_compile: bool = True  # XLA-compile the training step
    threads: int | None = None  # TensorFlow intra-op threads; None: all cores
    dtype: str = "float32"  # inputs, weights and arithmetic: one of DTYPE_NAMES
    # outputs
    out: str = "runs"  # run directories go to <out>/<run_name>
    models_dir: str = "saved_models"  # trained models go to <models_dir>/<run_name>.keras
    run_name: str | None = None  # None: amp<A>_seed<S>[_snr<SNR>]
    save_model: bool = True  # write the .keras file
    record_kernels: bool = False  # write the first Dense kernel and BN state per epoch to
    #   <run>/kernels.npz (about 11 x 784 x width values: opt-in)
    # provenance (labels only: they never change what a run computes)
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
        """Raise ConfigError naming the first bad value; return self when all are valid."""
        _positive_finite("amplitude", self.amplitude)
        if self.snr is not None:
            _positive_finite("snr", self.snr)
        _positive_finite("lr", self.lr)
        _positive_finite("init_std", self.init_std)
        for name in (
            "epochs",
            "batch_size",
            "monitor_every",
            "monitor_chunk",
            "monitor_deep_every",
        ):
            _at_least_one(name, getattr(self, name))
        if self.steps_per_execution is not None:
            _at_least_one("steps_per_execution", self.steps_per_execution)
        if self.threads is not None:
            _at_least_one("threads", self.threads)
        if not self.hidden:
            raise ConfigError("hidden needs at least one width. Received: none")
        for width in self.hidden:
            _at_least_one("hidden width", width)
        if len(self.bn_epsilon) not in (1, self.n_bn_layers):
            raise ConfigError(
                f"bn_epsilon takes 1 value or one per BN layer ({self.n_bn_layers}). "
                f"Received: {len(self.bn_epsilon)} values"
            )
        for epsilon in self.bn_epsilon:
            _positive_finite("bn_epsilon", epsilon)
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise ConfigError(f"l2 must be a finite number >= 0. Received: {self.l2!r}")
        if not (0.0 <= self.validation_fraction < 1.0):
            raise ConfigError(
                f"validation_fraction must be in [0, 1). Received: {self.validation_fraction!r}"
            )
        if not (0.0 <= self.bn_momentum < 1.0):
            raise ConfigError(f"bn_momentum must be in [0, 1). Received: {self.bn_momentum}")
        if self.optimizer not in OPTIMIZER_NAMES:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}. "
                f"Received: {self.optimizer!r}"
            )
        if self.dtype not in DTYPE_NAMES:
            raise ConfigError(
                f"dtype must be one of {', '.join(DTYPE_NAMES)}. Received: {self.dtype!r}"
            )
        if self.run_name is not None and (
            not self.run_name or "/" in self.run_name or self.run_name.startswith(".")
        ):
            raise ConfigError(f"run name must be a plain file name. Received: {self.run_name!r}")
        return self


def _positive_finite(name: str, value) -> None:
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"{name} must be a finite number > 0. Received: {value!r}")


def _at_least_one(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1. Received: {value!r}")
