"""Every column the monitor reports equals a direct NumPy computation."""

import keras
import numpy as np
import pytest
from helpers import as_numpy as numpy

from keras_bnreg import RegularizationMonitor, build_mlp, dense_bn_pairs, measures
from keras_bnreg.theory.forms import regularization_rate


class Snapshots(keras.callbacks.Callback):
    """Every Dense kernel at the start of each epoch, and the optimizer's step count."""

    def on_train_begin(self, logs=None):
        self.starts = []

    def on_epoch_begin(self, epoch, logs=None):
        kernels = {
            layer.name: numpy(layer.kernel)
            for layer in self.model.layers
            if isinstance(layer, keras.layers.Dense)
        }
        self.starts.append((kernels, int(self.model.optimizer.iterations)))


@pytest.fixture(scope="module")
def trained(small_dataset):
    keras.utils.set_random_seed(0)
    model = build_mlp((24, 12), bn_epsilon=(1e-3, 1e-2, 1e-1), seed=0)
    model.compile(keras.optimizers.Adam(0.1), "categorical_crossentropy")
    monitor = RegularizationMonitor(small_dataset.x_train, every=2, chunk_size=77, deep_every=1)
    snapshots = Snapshots()
    history = model.fit(
        small_dataset.x_train,
        keras.utils.to_categorical(small_dataset.y_train, 10),
        epochs=3,
        batch_size=128,
        verbose=0,
        callbacks=[snapshots, monitor],
    )
    return model, monitor, history, snapshots


def direct_inputs(model, x):
    """The real activations that enter each Dense layer, from Keras in inference mode."""
    pairs = dense_bn_pairs(model)
    probe = keras.Model(model.inputs[0], [p.dense.input for p in pairs])
    return dict(zip([p.name for p in pairs], [numpy(a) for a in probe(x)]))


def direct_angle(start, end):
    """The angle between each column of two kernels, by arccos of the cosine."""
    cosine = (start * end).sum(0) / np.linalg.norm(start, axis=0) / np.linalg.norm(end, axis=0)
    return np.arccos(np.clip(cosine, -1, 1))


def test_every_column_equals_direct_numpy(trained, small_dataset):
    model, monitor, _, snapshots = trained
    inputs = direct_inputs(model, small_dataset.x_train)
    start, start_step = snapshots.starts[-1]  # the last epoch's start
    steps = int(model.optimizer.iterations) - start_step
    assert steps == 5  # 600 inputs, batches of 128
    assert list(monitor.latest) == ["hidden1", "hidden2", "output"]
    for pair in dense_bn_pairs(model):
        table = monitor.latest[pair.name]
        x = inputs[pair.name]
        kernel, bias = numpy(pair.dense.kernel), numpy(pair.dense.bias)
        gamma, beta = numpy(pair.bn.gamma), numpy(pair.bn.beta)
        mean, var = numpy(pair.bn.moving_mean), numpy(pair.bn.moving_variance)
        z = x @ kernel
        scale = gamma / np.sqrt(var + pair.bn.epsilon)
        angle = direct_angle(start[pair.name], kernel)
        expected = {
            "alpha": np.sqrt((z**2).mean(0)),
            "alpha_centered": np.sqrt(
                np.diag(kernel.T @ np.cov(x, rowvar=False, bias=True) @ kernel)
            ),
            "alpha_moving": np.sqrt(var + (mean - bias) ** 2),
            "l1": np.abs(kernel).sum(0),
            "l2": np.sqrt((kernel**2).sum(0)),
            "l1_bn": np.abs(kernel * scale).sum(0),
            "l2_bn": np.sqrt(((kernel * scale) ** 2).sum(0)),
            "gamma": gamma,
            "beta": beta,
            "moving_mean": mean,
            "moving_variance": var,
            "angular_update": angle,
            "effective_lr": angle / steps,  # Adam: the measured angle per step
        }
        assert set(table) == set(expected)
        for column, value in expected.items():
            np.testing.assert_allclose(
                table[column], value, rtol=2e-5, atol=1e-6, err_msg=f"{pair.name}.{column}"
            )


def test_first_layer_alpha_uses_the_raw_inputs(trained, small_dataset):
    model, monitor, _, _ = trained
    kernel = numpy(model.get_layer("hidden1").kernel)
    x = small_dataset.x_train.astype(np.float64)
    np.testing.assert_allclose(
        monitor.latest["hidden1"]["alpha"],
        regularization_rate(kernel, x.T @ x / len(x)),
        rtol=2e-5,
    )


def test_logs_and_schedule(trained):
    _, monitor, history, _ = trained
    # every=2 over 3 epochs: epochs 2 and 3 (the last) are measured, epoch 1 is not.
    assert [record["epoch"] for record in monitor.records] == [2, 3]
    assert len(history.history["alpha_mean"]) == 2
    last = monitor.latest
    assert history.history["alpha_mean"][-1] == pytest.approx(last["hidden1"]["alpha"].mean())
    assert history.history["alpha_std"][-1] == pytest.approx(last["hidden1"]["alpha"].std())
    assert history.history["output_l2_bn_mean"][-1] == pytest.approx(last["output"]["l2_bn"].mean())
    assert "hidden2_alpha_moving_mean" in history.history


def test_measure_does_not_change_the_model(trained, small_dataset):
    model, monitor, _, _ = trained
    before = [w.copy() for w in model.get_weights()]
    first = monitor.measure()
    second = monitor.measure()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first["output"]["alpha"], second["output"]["alpha"])


def test_deep_schedule_skips_only_the_deeper_data_alphas(trained):
    _, monitor, _, _ = trained
    full = monitor.measure(deep=True)
    light = monitor.measure(deep=False)
    for column in full["hidden1"]:
        np.testing.assert_array_equal(light["hidden1"][column], full["hidden1"][column])
    for layer in ("hidden2", "output"):
        assert np.all(np.isnan(light[layer]["alpha"]))
        assert np.all(np.isnan(light[layer]["alpha_centered"]))
        for column in ("l2", "l2_bn", "alpha_moving", "gamma"):
            np.testing.assert_array_equal(light[layer][column], full[layer][column])
    summaries = monitor.summaries(light)
    assert "alpha_mean" in summaries and "output_alpha_mean" not in summaries
    assert "output_alpha_moving_mean" in summaries


def test_deep_every_in_training_logs(small_dataset):
    keras.utils.set_random_seed(1)
    model = build_mlp((8,), seed=1)
    model.compile("adam", "categorical_crossentropy")
    monitor = RegularizationMonitor(small_dataset.x_train, deep_every=2)
    history = model.fit(
        small_dataset.x_train,
        keras.utils.to_categorical(small_dataset.y_train, 10),
        epochs=3,
        batch_size=128,
        verbose=0,
        callbacks=[monitor],
    )
    # Every epoch measures the first layer; the output layer's data alpha at epochs 2 and 3.
    assert len(history.history["alpha_mean"]) == 3
    assert len(history.history["output_alpha_mean"]) == 2
    assert len(history.history["output_l2_mean"]) == 3


def test_input_moments_stream_exactly():
    x = np.random.default_rng(4).normal(loc=0.3, size=(1001, 7)).astype(np.float32)
    second, mean = measures.input_moments(x, chunk_size=100)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(second, x64.T @ x64 / len(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean, x64.mean(0), rtol=1e-6)


def test_rejects_bad_schedule():
    with pytest.raises(ValueError, match="every, chunk_size and deep_every"):
        RegularizationMonitor(np.zeros((2, 784)), every=0)
    with pytest.raises(ValueError, match="deep_every=0"):
        RegularizationMonitor(np.zeros((2, 784)), deep_every=0)


def test_a_model_measured_again_reuses_its_probes_and_sees_new_weights(small_dataset):
    """A sweep worker measures one model run after run: the probes (and their traced
    predict functions) are built once, and each measurement reads the current weights."""
    from keras_bnreg import measurer as measurer_module
    from keras_bnreg.monitor import ModelMeasurer

    model = build_mlp((8, 6), input_scale=2 / 255, seed=0)
    x = small_dataset.x_train[:300]
    before = ModelMeasurer(model, x).measure()
    probes = dict(measurer_module._PROBES[model])
    model.set_weights(build_mlp((8, 6), input_scale=5 / 255, seed=1).get_weights())
    after = ModelMeasurer(model, x).measure()
    assert measurer_module._PROBES[model] == probes  # the same probes, none built again
    fresh = ModelMeasurer(build_mlp((8, 6), input_scale=5 / 255, seed=1), x).measure()
    for name in ("hidden1", "hidden2", "output"):
        assert not np.allclose(after[name]["alpha"], before[name]["alpha"])
        np.testing.assert_allclose(after[name]["alpha"], fresh[name]["alpha"], rtol=1e-6)


def test_input_moments_are_reused_only_for_the_same_inputs_and_fixed_path(small_dataset):
    """A sweep's next run on the same digits at the same amplitude reuses R; another
    amplitude (the InputScaling weight) or other digits compute it again, as a fresh
    model would."""
    from keras_bnreg.monitor import ModelMeasurer

    def moments(model, x):
        measurer = ModelMeasurer(model, x)
        measurer.measure(deep=False)
        return measurer.moments["hidden1"]

    model = build_mlp((8,), input_scale=2 / 255, seed=0)
    x = small_dataset.x_train[:300]
    first = moments(model, x)
    assert ModelMeasurer(model, x.copy()).moments["hidden1"][0] is first[0]  # no pass
    model.set_weights(build_mlp((8,), input_scale=5 / 255, seed=1).get_weights())
    assert "hidden1" not in ModelMeasurer(model, x).moments  # another scaling: a new pass
    rescaled = moments(model, x)
    fresh = moments(build_mlp((8,), input_scale=5 / 255, seed=1), x)
    np.testing.assert_array_equal(rescaled[0], fresh[0])
    assert not np.allclose(rescaled[0], first[0])
    y = small_dataset.x_train[300:600]
    other = moments(model, y)
    assert not np.allclose(other[0], rescaled[0])
    fresh_other = moments(build_mlp((8,), input_scale=5 / 255), y)
    np.testing.assert_array_equal(other[0], fresh_other[0])
