"""The effective step beside alpha: the angular update and the effective learning rate.

Checked two ways: against a direct NumPy computation from the `record_kernels` snapshots of
a run (`kernels.npz`), and against SGD's closed form on a small model, where BN makes the
gradient orthogonal to each node's weights.
"""

import keras
import numpy as np
import pytest
from helpers import as_numpy as numpy

from keras_bnreg import RegularizationMonitor, experiment, files, measures
from keras_bnreg.config import RunConfig


def arccos_angle(start, end):
    cosine = (start * end).sum(0) / np.linalg.norm(start, axis=0) / np.linalg.norm(end, axis=0)
    return np.arccos(np.clip(cosine, -1, 1))


def test_angular_update_equals_arccos_and_is_exact_for_tiny_angles():
    rng = np.random.default_rng(0)
    start, turn = rng.normal(size=(30, 6)), rng.normal(size=(30, 6))
    end = 3.0 * (start + 0.2 * turn)  # the scale does not matter
    np.testing.assert_allclose(
        measures.angular_update(start, end), arccos_angle(start, end), rtol=1e-10
    )
    # A turn of 1e-9 rad: arccos of a cosine rounded to 1 gives 0 or 1.5e-8.
    unit = np.zeros((2, 1))
    unit[0] = 1.0
    tiny = np.array([[np.cos(1e-9)], [np.sin(1e-9)]])
    np.testing.assert_allclose(measures.angular_update(unit, tiny), [1e-9], rtol=1e-6)
    conv = rng.normal(size=(3, 3, 2, 4))  # one column per output channel
    moved = conv + 0.1 * rng.normal(size=conv.shape)
    np.testing.assert_allclose(
        measures.angular_update(conv, moved),
        arccos_angle(conv.reshape(-1, 4), moved.reshape(-1, 4)),
        rtol=1e-10,
    )


def test_effective_learning_rate_rules():
    kernel = np.array([[3.0, 0.0], [4.0, 2.0]])  # norms 5 and 2
    np.testing.assert_allclose(measures.sgd_effective_lr(0.1, kernel), [0.1 / 25, 0.1 / 4])
    np.testing.assert_allclose(measures.sgd_effective_lr(0.1, kernel, 0.9), [0.04, 0.25])
    step = measures.effective_step(kernel, 2 * kernel, steps=4)
    np.testing.assert_allclose(step["angular_update"], [0, 0], atol=1e-12)
    turned = measures.effective_step(kernel, kernel[::-1], steps=4)
    np.testing.assert_allclose(turned["effective_lr"], turned["angular_update"] / 4)
    sgd = measures.effective_step(kernel, kernel[::-1], steps=4, sgd=(0.1, 0.0))
    np.testing.assert_allclose(sgd["effective_lr"], [0.1 / 25, 0.1 / 4])


@pytest.fixture(scope="module")
def recorded_run(small_npz, tmp_path_factory):
    """A run of the paper's MLP (Adam) with its first layer's kernels recorded per epoch."""
    config = RunConfig(
        data=str(small_npz),
        hidden=(16,),
        epochs=3,
        batch_size=100,
        out=str(tmp_path_factory.mktemp("step")),
        save_model=False,
        record_kernels=True,
        # PyTorch backend: Keras runs one step per call (the default is an epoch per call)
        steps_per_execution=1 if keras.backend.backend() == "torch" else None,
    )
    result = experiment.run(config, verbose=0)
    assert result.status == "completed"
    return result.run_dir


def test_history_and_nodes_equal_numpy_on_the_recorded_kernels(recorded_run):
    with np.load(recorded_run / "kernels.npz") as arrays:
        kernels = arrays["kernel"].astype(np.float64)
    history = files.read_csv(recorded_run / "history.csv")
    nodes = files.read_csv(recorded_run / "nodes.csv")
    steps = 600 // 100  # Adam: the effective learning rate is the angle per step
    for epoch, row in enumerate(history, start=1):
        angles = arccos_angle(kernels[epoch - 1], kernels[epoch])
        assert row["angular_update_mean"] == pytest.approx(angles.mean(), rel=1e-5)
        assert row["effective_lr_mean"] == pytest.approx(angles.mean() / steps, rel=1e-5)
    last = arccos_angle(kernels[-2], kernels[-1])
    np.testing.assert_allclose([row["angular_update"] for row in nodes], last, rtol=1e-5)
    np.testing.assert_allclose([row["effective_lr"] for row in nodes], last / steps, rtol=1e-5)
    assert history[-1]["output_angular_update_mean"] > 0  # every layer has them


def test_sgd_closed_form_on_a_small_model():
    """Full-batch SGD, one step per epoch. BN right after each Dense layer makes the loss
    blind to the scale of each node's weights, so the gradient g_j is orthogonal to w_j:
    the step turns w_j by atan(lr ||g_j|| / ||w_j||) and grows ||w_j||^2 by lr^2 ||g_j||^2;
    the monitor's effective learning rate is lr / ||w_j||^2."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10)).astype("float32")
    y = (x[:, :3] @ rng.normal(size=(3, 4))).argmax(1)
    inputs = keras.Input((10,))
    hidden = keras.layers.Dense(6, name="hidden")(inputs)
    hidden = keras.layers.BatchNormalization(epsilon=1e-9, momentum=0.0)(hidden)
    logits = keras.layers.Dense(4, name="out")(keras.layers.ReLU()(hidden))
    logits = keras.layers.BatchNormalization(epsilon=1e-9, momentum=0.0)(logits)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    lr = 0.5
    model.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy")
    start = numpy(model.get_layer("hidden").kernel)
    monitor = RegularizationMonitor(x)
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0, callbacks=[monitor])
    end = numpy(model.get_layer("hidden").kernel)
    gradient = (start - end) / lr  # the step SGD took
    norm, grad_norm = np.linalg.norm(start, axis=0), np.linalg.norm(gradient, axis=0)
    cosine = (start * gradient).sum(0) / norm / grad_norm
    np.testing.assert_allclose(cosine, 0, atol=1e-4)  # BN: the gradient is orthogonal to w
    np.testing.assert_allclose(
        np.linalg.norm(end, axis=0) ** 2, norm**2 + lr**2 * grad_norm**2, rtol=1e-4
    )
    table = monitor.latest["hidden"]
    np.testing.assert_allclose(table["angular_update"], np.arctan(lr * grad_norm / norm), rtol=1e-4)
    np.testing.assert_allclose(table["effective_lr"], lr / np.linalg.norm(end, axis=0) ** 2)
