"""The monitor takes what `model.fit` takes: every pipeline measures like the arrays it holds.

A CNN with a fixed-input layer (input patch moments) and two streamed layers (projection
moments), measured on arrays, is the reference; each pipeline must give the same columns to
float rounding, read its data once per measurement, and leave fit's own pipeline as it was.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import IMAGES, LABELS, STEP, assert_same_columns, bn_classifier, bn_cnn

from keras_bnreg import RegularizationMonitor, measure_model
from keras_bnreg.inputs import TrainingInputs


@pytest.fixture(scope="module")
def model():
    return bn_cnn("same", 2)


@pytest.fixture(scope="module")
def reference(model):
    return measure_model(model, IMAGES, chunk_size=7)


class Batches(keras.utils.PyDataset):
    """A PyDataset of (x, y) batches of `IMAGES` that counts what is read."""

    def __init__(self, size=10, **kwargs):
        super().__init__(**kwargs)
        self.size, self.reads = size, 0

    def __len__(self):
        return -(-len(IMAGES) // self.size)

    def __getitem__(self, index):
        self.reads += 1
        window = slice(index * self.size, (index + 1) * self.size)
        return IMAGES[window], LABELS[window]


def batches(size=16):
    for start in range(0, len(IMAGES), size):
        yield IMAGES[start : start + size], LABELS[start : start + size]


PIPELINES = {
    "tf.data (x, y) shuffled, batched": lambda: (
        tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).shuffle(40, seed=1).batch(9)
    ),
    "tf.data x, unbatched": lambda: tf.data.Dataset.from_tensor_slices(IMAGES),
    "tf.data after map, (x, y, w)": lambda: (
        tf.data.Dataset.from_tensor_slices((IMAGES, LABELS, np.ones(len(IMAGES))))
        .batch(5)
        .map(lambda x, y, w: (tf.identity(x), y, w))
    ),
    "PyDataset": Batches,
    "PyDataset, two worker threads": lambda: Batches(workers=2),
    "generator": batches,
    "generator function": lambda: batches,
}


@pytest.mark.parametrize("kind", list(PIPELINES))
def test_every_pipeline_measures_like_its_arrays(kind, model, reference):
    assert_same_columns(measure_model(model, PIPELINES[kind](), chunk_size=7), reference)


def test_a_pipeline_is_read_once_per_measurement(model, reference):
    data = Batches()
    assert_same_columns(measure_model(model, data, chunk_size=7), reference)
    assert data.reads == len(data)  # fixed layer's moments and streamed layers: one pass


def test_max_samples_caps_the_pass_and_is_reported(model):
    limited = measure_model(model, IMAGES[:25], chunk_size=7)
    infinite = tf.data.Dataset.from_tensor_slices(IMAGES).batch(10).repeat()
    assert_same_columns(measure_model(model, infinite, max_samples=25, chunk_size=7), limited)
    covering = measure_model(model, Batches(), max_samples=len(IMAGES), chunk_size=7)
    assert_same_columns(covering, measure_model(model, IMAGES, chunk_size=7))
    inputs = TrainingInputs(Batches(), max_samples=25)
    assert sum(len(chunk) for chunk in inputs.chunks(7)) == 25
    assert (inputs.samples, inputs.capped) == (25, True)
    whole = TrainingInputs(Batches(), max_samples=1000)
    assert sum(len(chunk) for chunk in whole.chunks(7)) == 40
    assert (whole.samples, whole.capped) == (40, False)


def fit(model, data, callbacks, epochs=2):
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model.fit(data, epochs=epochs, verbose=0, callbacks=callbacks)


def test_the_monitor_leaves_fits_shuffled_dataset_as_it_was():
    """Reading a seeded shuffling dataset again would draw fit's next order: the monitor
    reads a copy without the shuffle, so training is bit for bit the same."""

    def train(with_monitor):
        keras.utils.set_random_seed(0)
        model = bn_classifier()
        data = tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).shuffle(40, seed=2).batch(8)
        monitor = RegularizationMonitor(data, max_samples=1000)
        history = fit(model, data, [monitor] if with_monitor else [], epochs=3)
        return model.get_weights(), history, monitor

    plain, _, _ = train(False)
    monitored, history, monitor = train(True)
    for a, b in zip(plain, monitored):
        np.testing.assert_array_equal(a, b)
    assert history.history["monitor_samples"] == [40, 40, 40]
    assert_same_columns(monitor.latest, measure_model(monitor.model, IMAGES), skip=STEP)


def test_a_generator_is_read_once_and_its_inputs_kept():
    keras.utils.set_random_seed(0)
    model = bn_classifier()
    monitor = RegularizationMonitor(batches(8))
    fit(model, tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(8), [monitor])
    assert [record["epoch"] for record in monitor.records] == [1, 2]
    assert_same_columns(monitor.latest, measure_model(model, IMAGES), skip=STEP)


def test_augmentation_in_the_pipeline_is_measured(model):
    """A pipeline's map applies to the monitor's pass too: alpha of what the model gets."""
    doubled = tf.data.Dataset.from_tensor_slices(IMAGES).batch(10).map(lambda x: 2 * x)
    assert_same_columns(measure_model(model, doubled), measure_model(model, 2 * IMAGES))


@pytest.mark.parametrize(
    "data, message",
    [
        ("images", "training inputs must be what model.fit takes as x: NumPy arrays"),
        (np.zeros(()), "must be arrays with a batch axis"),
        ([np.zeros((3, 2)), np.zeros((4, 2))], "same number of inputs in every array"),
        (
            tf.data.Dataset.from_tensor_slices((IMAGES, LABELS, LABELS, LABELS)),
            r"must yield x, \(x,\), \(x, y\) or \(x, y, w\). Received elements of 4 parts",
        ),
        (tf.data.Dataset.from_tensor_slices(["a", "b"]), "must yield numeric inputs x"),
        (tf.data.Dataset.from_tensor_slices(IMAGES).repeat(), "infinite .*give max_samples"),
    ],
)
def test_wrong_data_is_one_line_at_construction(data, message):
    with pytest.raises(ValueError, match=message) as caught:
        RegularizationMonitor(data)
    assert "\n" not in str(caught.value)


def test_a_generator_of_bare_arrays_is_refused_as_fit_refuses_it(model):
    def bare():
        yield IMAGES

    with pytest.raises(ValueError, match="training inputs: When passing a Python generator"):
        measure_model(model, bare())


def test_torch_data_loader_measures_like_its_arrays(model, reference):
    torch = pytest.importorskip("torch")  # verified where torch is installed (README)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(IMAGES), torch.from_numpy(LABELS))
    loader = torch.utils.data.DataLoader(dataset, batch_size=6, shuffle=True)
    state = torch.random.get_rng_state()
    assert_same_columns(measure_model(model, loader, chunk_size=7), reference)
    assert torch.equal(state, torch.random.get_rng_state())  # fit's shuffling untouched
