"""One typed configuration for a training run, with its validation."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from dataclasses import dataclass, field

from keras_bnreg import checks

OPTIMIZER_NAMES = ("adam", "sgd")
DTYPE_NAMES = ("float32", "float64")
ARCH_NAMES = ("mlp", "cnn")  # models.ARCHITECTURES


INPUT_DIM = 784  # 28 x 28 pixels, flattened


class ConfigError(checks.InputError):
    """A configuration value is out of range; the message is one user-facing line."""


# What a setting is for: every RunConfig field names one of these in its definition, and
# what must agree with it is derived from there (`science_differences`, `compiled_shape`).
ROLES = {
    "science": "decides what a run computes or records (its numbers and the files that hold "
    "them): compared when a sweep resumes and when the report selects runs",
    "speed": "decides how fast a run goes, not what it computes (float rounding aside): "
    "never compared",
    "output": "decides where a run's files go and how they are labelled: never compared",
}


def setting(
    default=dataclasses.MISSING,
    help="",
    *,
    role,
    shape=False,
    factory=dataclasses.MISSING,
    type=None,
    nargs=None,
    choices=None,
    flag=None,
    metavar=None,
):
    """A RunConfig field with its role and what its command-line flag needs.

    Args:
        default: the value when none is given (`factory`: a function making it).
        help: its meaning and units (train.py --help prints it).
        role: one of `ROLES`: science, speed or output.
        shape: True when a different value changes a compiled model (its graph, or the
            number of training inputs, which sets the steps per compiled call): runs share
            a compiled model only when every such field is equal.
        type, nargs, choices, metavar: for the flag (train.py generates its flags).
        flag: the flag's name (default `--<field-name>`; a boolean that defaults to True
            becomes `--no-<name>`); False: no flag.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}. Received: {role!r}")
    metadata = {"help": help, "role": role, "shape": bool(shape), "type": type, "nargs": nargs}
    metadata.update(choices=choices, flag=flag, metavar=metavar)
    return field(default=default, default_factory=factory, metadata=metadata)


def per_layer_epsilons(bn_epsilon, n_bn_layers: int) -> tuple[float, ...]:
    """One BN epsilon per BN layer: `bn_epsilon` itself, or its single value repeated.

    Raises:
        ConfigError: `bn_epsilon` has neither 1 nor `n_bn_layers` values.
    """
    values = tuple(bn_epsilon)
    if len(values) == 1:
        return values * n_bn_layers
    if len(values) != n_bn_layers:
        raise ConfigError(
            f"bn_epsilon takes 1 value or one per BN layer ({n_bn_layers}). "
            f"Received: {len(values)} values"
        )
    return values


def fields_with(*, role=None, shape=None) -> tuple[str, ...]:
    """The names of RunConfig's fields with this role (`ROLES`) and/or shape flag."""
    return tuple(
        item.name
        for item in dataclasses.fields(RunConfig)
        if (role is None or item.metadata["role"] == role)
        and (shape is None or item.metadata["shape"] == shape)
    )


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
        role="science",
        shape=True,
        type=str,
    )
    data_dir: str | None = setting(
        None,
        "TFDS data directory (default: tfds's own / TFDS_DATA_DIR)",
        role="science",
        shape=True,
        type=str,
    )
    amplitude: float = setting(
        1.0,
        "data amplitude A: the model sees image / 255 * A (its input_scaling layer)",
        role="science",
        type=float,
    )
    snr: float | None = setting(
        None,
        "add fixed Gaussian noise at this signal-to-noise ratio (default: none)",
        role="science",
        type=float,
    )
    noise_seed: int = setting(0, "seed of the fixed noisy data set", role="science", type=int)
    # model
    hidden: tuple[int, ...] = setting(
        (300,),
        "hidden widths, one per Dense+BN+ReLU block",
        role="science",
        shape=True,
        type=int,
        nargs="+",
    )
    arch: str = setting(
        "mlp",
        "architecture: mlp (the paper's), or cnn (hidden = channels of 3x3 Conv2D+BN blocks)",
        role="science",
        shape=True,
        type=str,
        choices=ARCH_NAMES,
    )
    init_std: float = setting(
        0.01, "std of the Gaussian kernel initialiser", role="science", type=float
    )
    bn_epsilon: tuple[float, ...] = setting(
        (1e-3,),
        "BN epsilon: one value for every BN layer, or one per BN layer",
        role="science",  # a weight of the BN layer, not a constant of the graph
        type=float,
        nargs="+",
    )
    bn_momentum: float = setting(
        0.99, "BN moving-statistics momentum", role="science", shape=True, type=float
    )
    batchnorm: bool = setting(
        True, "leave out BN (the explicit-L2 baseline)", role="science", shape=True, flag="--no-bn"
    )
    l2: float = setting(
        0.0,
        "explicit L2 rate on every kernel: loss += l2 * sum(w^2) per layer",
        role="science",
        shape=True,
        type=float,
    )
    # optimisation
    optimizer: str = setting(
        "adam", "optimizer", role="science", shape=True, type=str, choices=OPTIMIZER_NAMES
    )
    lr: float = setting(
        0.1, "learning rate (the paper's Adam 0.1)", role="science", shape=True, type=float
    )
    batch_size: int = setting(128, "samples per step", role="science", shape=True, type=int)
    epochs: int = setting(10, "epochs (the paper states none)", role="science", type=int)
    seed: int = setting(
        0, "random seed: weight init, shuffling, bundled split", role="science", type=int
    )
    validation_fraction: float = setting(
        0.0,
        "validate on this held-out part of the training split instead of the test split "
        "(0: validate on the test split)",
        role="science",
        shape=True,
        type=float,
    )
    # measurement
    monitor_every: int = setting(
        1, "measure alpha and norms every N epochs (and at the last)", role="science", type=int
    )
    monitor_chunk: int = setting(
        8192, "rows per chunk of the monitor's passes", role="speed", type=int
    )
    monitor_deep_every: int = setting(
        10,
        "measure deeper layers' data-based alpha every N epochs and at the last "
        "(each costs one forward pass over the training inputs)",
        role="science",
        type=int,
    )
    tensorboard: str | None = setting(
        None,
        "write TensorBoard scalars and per-node histograms to DIR",
        role="output",
        type=str,
        metavar="DIR",
    )
    # how it runs
    steps_per_execution: int | None = setting(
        None,
        "training steps per compiled call (default: a whole epoch)",
        role="speed",
        shape=True,
        type=int,
    )
    jit_compile: bool = setting(
        True, "do not XLA-compile the training step", role="speed", shape=True, flag="--no-jit"
    )
    threads: int | None = setting(
        None, "TensorFlow threads (default: all cores)", role="speed", type=int
    )
    dtype: str = setting(
        "float32",
        "inputs, weights and arithmetic",
        role="science",
        shape=True,
        type=str,
        choices=DTYPE_NAMES,
    )
    # outputs
    out: str = setting(
        "runs", "directory of run directories: <out>/<run name>/", role="output", type=str
    )
    models_dir: str = setting(
        "saved_models",
        "where the .keras files go: <models-dir>/<run name>.keras",
        role="output",
        type=str,
    )
    run_name: str | None = setting(
        None, "run name (default: amp<A>_seed<S>[_snr<SNR>])", role="output", type=str
    )
    save_model: bool = setting(
        True, "do not write the .keras file", role="science", flag="--no-save-model"
    )
    record_kernels: bool = setting(
        False,
        "write the first Dense kernel and BN state per epoch to <run>/kernels.npz "
        "(about 11 x 784 x width values)",
        role="science",
    )
    # provenance: labels of the run in config.json (no flags)
    study: str | None = setting(
        None,
        "the study that asked for this run (keras_bnreg.studies); None: none",
        role="output",
        flag=False,
    )
    role: dict = setting(
        help="its part in that study, e.g. {'group': 'sgd'}",
        role="output",
        factory=dict,
        flag=False,
    )
    extra: dict = setting(
        help="free-form notes carried into config.json", role="output", factory=dict, flag=False
    )

    @property
    def n_bn_layers(self) -> int:
        return len(self.hidden) + 1

    @property
    def epsilons(self) -> tuple[float, ...]:
        """The BN epsilon of each BN layer, in order (first hidden ... output)."""
        return per_layer_epsilons(self.bn_epsilon, self.n_bn_layers)

    def science(self) -> dict:
        """The science settings (`ROLES`), as config.json holds them (JSON values)."""
        values = json.loads(json.dumps(self.to_dict()))
        return {name: values[name] for name in fields_with(role="science")}

    def science_differences(self, saved: dict) -> dict:
        """Setting -> (saved value, this config's value) for every science setting where
        `saved` (a config.json's contents) differs from this config; empty when a run made
        with `saved` computed what this config asks for.

        `saved` is read through RunConfig first, so a setting added since that run was made
        takes its default.

        Raises:
            TypeError, ValueError: `saved` does not describe a RunConfig.
        """
        have, want = RunConfig.from_dict(saved).science(), self.science()
        return {name: (have[name], want[name]) for name in want if have[name] != want[name]}

    def compiled_shape(self) -> tuple:
        """The values of the settings that shape a compiled model (`setting(shape=True)`):
        runs with equal tuples can share one."""
        return tuple(getattr(self, name) for name in fields_with(shape=True))

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
        per_layer_epsilons(self.bn_epsilon, self.n_bn_layers)
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
