"""Loaders on files the tests write, on the genuine MNIST test digits, and offline tfds."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest
from helpers import MNIST_T10K, synthetic_digits, write_npz

from keras_bnreg import data
from keras_bnreg.data import sources


def write_idx(path, array, magic, compress):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    content = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


def write_idx_dir(directory, n_train=50, n_test=20, compress=True):
    directory.mkdir(parents=True, exist_ok=True)
    x_train, y_train = synthetic_digits(n_train, 0)
    x_test, y_test = synthetic_digits(n_test, 1)
    for stem, array, magic in (
        ("train-images-idx3-ubyte", x_train, 2051),
        ("train-labels-idx1-ubyte", y_train, 2049),
        ("t10k-images-idx3-ubyte", x_test, 2051),
        ("t10k-labels-idx1-ubyte", y_test, 2049),
    ):
        write_idx(directory / stem, array.astype(np.uint8), magic, compress)
    return (x_train, y_train, x_test, y_test)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_directory_round_trip(tmp_path, compress):
    arrays = write_idx_dir(tmp_path / "idx", compress=compress)
    raw = data.load_raw(str(tmp_path / "idx"))
    assert raw.source == "idx"
    for got, expected in zip((raw.x_train, raw.y_train, raw.x_test, raw.y_test), arrays):
        np.testing.assert_array_equal(got, expected)


def test_npz_round_trip_and_scaling(tmp_path):
    path = write_npz(tmp_path / "m.npz", n_train=40, n_test=10)
    raw = data.load_raw(str(path))
    with np.load(path) as archive:
        np.testing.assert_array_equal(raw.x_train, archive["x_train"])
        np.testing.assert_array_equal(raw.y_test, archive["y_test"])
    dataset = data.prepare(raw, amplitude=3.0)
    # The dataset holds raw pixels, as a saved model takes them; the model scales them.
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.shape == (40, 784)
    np.testing.assert_array_equal(dataset.x_train, raw.x_train.reshape(40, 784))
    assert dataset.input_scale == pytest.approx(3 / 255)
    np.testing.assert_allclose(
        dataset.scaled(dataset.x_train), raw.x_train.reshape(40, 784) / 255 * 3, rtol=1e-6
    )
    assert dataset.describe()["n_train"] == 40 and dataset.noise_sigma is None


def test_noise_follows_the_snr_definition(tmp_path):
    raw = data.load_raw(str(write_npz(tmp_path / "m.npz", n_train=500, n_test=300)))
    clean = data.prepare(raw, amplitude=2.0)
    noisy = data.prepare(raw, amplitude=2.0, snr=0.5, noise_seed=7)
    scaled_train = clean.scaled(clean.x_train).astype(np.float64)
    expected_sigma = np.sqrt(scaled_train.var(axis=0).mean() / 0.5)
    assert noisy.noise_sigma == pytest.approx(expected_sigma, rel=1e-9)
    for split in ("x_train", "x_test"):
        # noise is stored in raw units: the model's scaling turns it into sigma
        difference = noisy.scaled(getattr(noisy, split)).astype(np.float64) - clean.scaled(
            getattr(clean, split)
        )
        assert difference.std() == pytest.approx(expected_sigma, rel=0.01)
        assert abs(difference.mean()) < 0.01 * expected_sigma
    again = data.prepare(raw, amplitude=2.0, snr=0.5, noise_seed=7)
    np.testing.assert_array_equal(again.x_train, noisy.x_train)
    other = data.prepare(raw, amplitude=2.0, snr=0.5, noise_seed=8)
    assert not np.array_equal(other.x_train, noisy.x_train)


def test_bundled_is_a_stratified_seeded_split_of_genuine_digits():
    raw = data.load_raw("bundled", seed=0)
    assert raw.source == "bundled"
    assert raw.x_train.shape == (4000, 28, 28) and raw.x_test.shape == (1000, 28, 28)
    assert np.bincount(raw.y_train).tolist() == [400] * 10
    assert np.bincount(raw.y_test).tolist() == [100] * 10
    assert len(set(raw.y_train[:20].tolist())) > 3, "not shuffled"
    assert 20 < raw.x_train.mean() < 50  # genuine MNIST digits average about 33 on 0..255
    np.testing.assert_array_equal(data.load_raw("bundled", seed=0).x_test, raw.x_test)
    assert not np.array_equal(data.load_raw("bundled", seed=1).x_test, raw.x_test)


def test_auto_falls_back_to_bundled_quickly_offline(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "download_host_reachable", lambda timeout=3.0: False)
    notices = []
    import tensorflow_datasets  # noqa: F401  (its import time is not the network wait)

    start = time.perf_counter()
    raw = data.load_raw("auto", data_dir=str(tmp_path / "tfds"), notify=notices.append)
    # offline tfds retries for ~205 s; here about 0.5 s on a quiet machine
    assert time.perf_counter() - start < 10
    assert raw.source == "bundled"
    assert len(notices) == 1 and "bundled" in notices[0]


def test_tfds_source_and_auto_with_mocked_tfds(monkeypatch):
    import tensorflow_datasets as tfds

    # mock_data stands in for the download, so the host must look reachable
    monkeypatch.setattr(sources, "download_host_reachable", lambda timeout=3.0: True)
    with tfds.testing.mock_data(num_examples=30):
        raw = data.load_raw("tfds")
        assert raw.source == "tfds"
        assert raw.x_train.shape == (30, 28, 28) and raw.x_train.dtype == np.uint8
        assert raw.y_train.min() >= 0 and raw.y_train.max() <= 9
        assert data.load_raw("auto", notify=lambda m: None).source == "tfds"


def bad_npz(tmp_path, **overrides):
    arrays = dict(zip(sources.NPZ_KEYS, [*synthetic_digits(10), *synthetic_digits(5, 1)]))
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"y_test": None}, "key 'y_test' missing"),
        ({"y_train": np.zeros(9, np.int64)}, "10 images but y_train has 9 labels"),
        ({"x_train": np.zeros((10, 32, 32), np.uint8)}, "expected (N, 28, 28)"),
        ({"y_train": np.full(10, 10)}, "labels must be integers 0..9"),
        ({"x_test": np.full((5, 28, 28), 300.0)}, "pixels must be integers 0..255 or floats"),
        ({"x_test": np.full((5, 28, 28), 2.5)}, "non-integer values"),
        ({"x_test": np.full((5, 28, 28), np.nan)}, "finite real numbers"),
        ({"x_test": np.full((5, 28, 28), "a")}, "must hold numbers"),
        ({"y_train": np.array(list("abcdefghij"))}, "labels must be integers 0..9"),
        ({"y_train": np.full(10, 0.5)}, "labels must be integers 0..9"),
    ],
)
def test_bad_npz_is_a_one_line_data_error(tmp_path, overrides, message):
    with pytest.raises(data.DataError) as error:
        data.load_raw(str(bad_npz(tmp_path, **overrides)))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_paths_and_idx_files(tmp_path):
    with pytest.raises(data.DataError, match="no such file or directory"):
        data.load_raw(str(tmp_path / "missing.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match="not a readable .npz"):
        data.load_raw(str(tmp_path / "junk.npz"))
    write_idx_dir(tmp_path / "idx", compress=False)
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte"):
        data.load_raw(str(tmp_path / "idx"))
    images = tmp_path / "idx" / "train-images-idx3-ubyte"
    content = images.read_bytes()
    images.write_bytes(content[:-7])
    with pytest.raises(data.DataError, match="data bytes, expected"):
        data.read_idx(images)
    images.write_bytes((1234).to_bytes(4, "big") + content[4:])
    with pytest.raises(data.DataError, match="bad IDX magic number 1234"):
        data.read_idx(images)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(content)[:100])
    with pytest.raises(data.DataError, match="cannot read IDX file"):
        data.read_idx(broken)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("amplitude", 0.0, "amplitude must be a finite number > 0"),
        ("amplitude", np.inf, "amplitude must be a finite number > 0"),
        ("amplitude", 1e-300, "finite and non-zero in float32"),
        ("amplitude", 1e308, "finite and non-zero in float32"),
        ("snr", -1, "snr must be a finite number > 0"),
    ],
)
def test_prepare_rejects_bad_scale_or_snr(tmp_path, name, value, message):
    raw = data.load_raw(str(write_npz(tmp_path / "m.npz", n_train=20, n_test=10)))
    with pytest.raises(data.DataError, match=message):
        data.prepare(raw, **{name: value})


def test_float_pixels_in_0_1_are_read_as_image_over_255_with_a_notice(tmp_path):
    images, labels = synthetic_digits(10)
    path = bad_npz(tmp_path, x_train=images / 255.0)
    notices = []
    raw = data.load_raw(str(path), notify=notices.append)
    assert len(notices) == 1 and "floats in [0, 1]" in notices[0] and "x_train" in notices[0]
    np.testing.assert_allclose(raw.x_train, images, atol=1e-4)
    with pytest.raises(data.DataError, match="all zero after scaling"):
        data.prepare(data.load_raw(str(bad_npz(tmp_path, x_test=np.zeros((5, 28, 28))))))


def test_idx_header_sizes_that_overflow_are_a_data_error(tmp_path):
    header = (2051).to_bytes(4, "big") + b"".join((2**32 - 1).to_bytes(4, "big") for _ in "abc")
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(header + bytes(100))
    with pytest.raises(data.DataError, match="data bytes, expected"):
        data.read_idx(path)


def test_tfds_offline_fails_in_seconds(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "download_host_reachable", lambda timeout=3.0: False)
    import tensorflow_datasets  # noqa: F401  (its import time is not the network wait)

    start = time.perf_counter()
    with pytest.raises(data.DataError, match="not prepared and the download host"):
        data.load_raw("tfds", data_dir=str(tmp_path / "tfds"))
    # offline tfds retries for ~205 s; here about 0.5 s on a quiet machine
    assert time.perf_counter() - start < 10


needs_t10k = pytest.mark.skipif(
    not (MNIST_T10K / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"genuine MNIST test digits not found at {MNIST_T10K}",
)


@needs_t10k
def test_genuine_mnist_test_digits():
    images = data.read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz")
    labels = data.read_idx(MNIST_T10K / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert images.mean() == pytest.approx(33.7912, abs=5e-5)


@needs_t10k
def test_genuine_digits_as_an_idx_directory(tmp_path):
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            source = MNIST_T10K / f"t10k-{kind}-ubyte.gz"
            (tmp_path / f"{split}-{kind}-ubyte.gz").symlink_to(source)
    dataset = data.load(str(tmp_path), amplitude=4.0)
    assert dataset.source == "idx" and dataset.x_train.shape == (10000, 784)
    assert dataset.scaled(dataset.x_train).max() == pytest.approx(4.0)
