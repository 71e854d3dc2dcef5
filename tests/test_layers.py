import zipfile

import h5py
import keras
import numpy as np
import pytest

from keras_bnreg import InspectableBatchNormalization, build_mlp, dense_bn_pairs
from keras_bnreg.layers import batchnorm_statistics


def trained_like_layer(n=6, seed=0):
    """An InspectableBatchNormalization with non-trivial gamma, beta and statistics."""
    rng = np.random.default_rng(seed)
    layer = InspectableBatchNormalization(epsilon=1e-3, momentum=0.9)
    layer.build((None, n))
    layer.gamma.assign(rng.uniform(0.5, 2, n))
    layer.beta.assign(rng.normal(size=n))
    layer.moving_mean.assign(rng.normal(size=n))
    layer.moving_variance.assign(rng.uniform(0.2, 3, n))
    return layer


def test_training_mode_matches_keras_bn():
    rng = np.random.default_rng(1)
    x = rng.normal(loc=1.5, scale=2.0, size=(64, 6)).astype("float32")
    inspectable = trained_like_layer()
    plain = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.9)
    plain.build((None, 6))
    plain.set_weights(inspectable.get_weights()[:4])  # the fifth: epsilon, as a weight
    out_inspectable = inspectable(x, training=True).numpy()
    out_plain = plain(x, training=True).numpy()
    np.testing.assert_allclose(out_inspectable, out_plain, rtol=1e-6, atol=1e-6)
    stats = inspectable.statistics()
    assert set(stats) == {"gamma", "beta", "moving_mean", "moving_variance"}
    np.testing.assert_allclose(stats["moving_mean"], plain.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(stats["moving_variance"], plain.moving_variance.numpy(), rtol=1e-6)
    for key, value in batchnorm_statistics(plain).items():
        np.testing.assert_allclose(value, stats[key], rtol=1e-6)


def test_statistics_without_scale_and_center():
    layer = keras.layers.BatchNormalization(scale=False, center=False)
    layer.build((None, 3))
    stats = batchnorm_statistics(layer)
    np.testing.assert_array_equal(stats["gamma"], np.ones(3))
    np.testing.assert_array_equal(stats["beta"], np.zeros(3))


def test_a_file_with_other_bn_variables_is_refused_by_name(tmp_path):
    """A file whose BN layers hold two more variables (a layout no release wrote) is not
    guessed at: loading it names the layer and the counts."""
    model = build_mlp((5,), input_dim=7, seed=2)
    path = tmp_path / "old.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(entries["model.weights.h5"])
    with h5py.File(weights, "r+") as store:
        groups = [name for name in store["layers"] if "batch_normalization" in name]
        assert len(groups) == 2
        for name in groups:
            group = store[f"layers/{name}/vars"]
            count = len(group.keys())
            group[str(count)] = np.full(group["0"].shape, 7.0, "float32")
            group[str(count + 1)] = np.full(group["0"].shape, 9.0, "float32")
    entries["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    with pytest.raises(
        ValueError, match="layer 'hidden1_bn' expects 4 variables in the file, found 6"
    ):
        keras.models.load_model(path, safe_mode=True)


def test_folding_identity_in_inference_mode():
    rng = np.random.default_rng(2)
    kernel, bias = rng.normal(size=(10, 6)), rng.normal(size=6)
    layer = trained_like_layer()
    x = rng.normal(size=(40, 10))
    expected = layer((x @ kernel + bias).astype("float32"), training=False).numpy()
    w_bn, b_bn = layer.fold(kernel, bias)
    np.testing.assert_allclose(x @ w_bn + b_bn, expected, rtol=1e-5, atol=1e-5)


def test_folding_identity_on_a_trained_model_layer(small_dataset):
    model = build_mlp((16,), seed=0)
    model.compile("adam", "categorical_crossentropy")
    y = keras.utils.to_categorical(small_dataset.y_train, 10)
    model.fit(small_dataset.x_train, y, epochs=1, batch_size=64, verbose=0)
    pair = dense_bn_pairs(model)[0]
    x = small_dataset.x_test[:50]
    probe = keras.Model(model.inputs[0], pair.bn.output)
    expected = probe(x, training=False).numpy()
    w_bn, b_bn = pair.bn.fold(pair.dense.kernel, pair.dense.bias)
    np.testing.assert_allclose(x @ w_bn + b_bn, expected, rtol=1e-4, atol=1e-4)


def test_config_round_trip():
    layer = InspectableBatchNormalization(epsilon=0.25, momentum=0.5, name="bn")
    clone = InspectableBatchNormalization.from_config(layer.get_config())
    assert clone.epsilon == 0.25 and clone.momentum == 0.5 and clone.name == "bn"


def test_saved_model_round_trip_gives_identical_predictions(tmp_path, small_dataset):
    model = build_mlp((12, 8), seed=3)
    model.compile("adam", "categorical_crossentropy")
    y = keras.utils.to_categorical(small_dataset.y_train, 10)
    model.fit(small_dataset.x_train, y, epochs=1, batch_size=64, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("hidden1_bn"), InspectableBatchNormalization)
    np.testing.assert_array_equal(
        loaded.predict(small_dataset.x_test, verbose=0),
        model.predict(small_dataset.x_test, verbose=0),
    )
    for name in ("hidden1_bn", "output_bn"):
        for key, value in model.get_layer(name).statistics().items():
            np.testing.assert_array_equal(loaded.get_layer(name).statistics()[key], value)


def test_build_mlp_structure_and_epsilons():
    model = build_mlp((300,), bn_epsilon=(1e-5, 0.1))
    pairs = dense_bn_pairs(model)
    assert [p.name for p in pairs] == ["hidden1", "output"]
    assert [p.bn.epsilon for p in pairs] == [1e-5, 0.1]
    # Dense kernel + bias; BN gamma, beta, moving mean/variance, and its epsilon (a scalar).
    assert model.count_params() == (784 * 300 + 300) + 4 * 300 + (300 * 10 + 10) + 4 * 10 + 2
    assert len(model.trainable_weights) == 8
    with pytest.raises(ValueError, match=r"bn_epsilon takes 1 value or one per BN layer \(2\)"):
        build_mlp((300,), bn_epsilon=(1e-3, 1e-3, 1e-3))


def test_initial_kernel_std_follows_init_std():
    kernel = dense_bn_pairs(build_mlp((300,), init_std=0.01, seed=5))[0].dense.kernel.numpy()
    assert kernel.std() == pytest.approx(0.01, rel=0.02)


def test_build_cnn_pairs_and_config():
    from keras_bnreg.config import ConfigError, RunConfig
    from keras_bnreg.models import build_cnn

    model = build_cnn((4, 6), bn_epsilon=(1e-3, 1e-2, 1e-1))
    pairs = dense_bn_pairs(model)
    assert [(p.name, p.fixed_inputs) for p in pairs] == [
        ("conv1", True),
        ("conv2", False),
        ("output", False),
    ]
    assert [p.bn.epsilon for p in pairs] == [1e-3, 1e-2, 1e-1]
    assert model.output_shape == (None, 10) and model.input_shape == (None, 784)
    with pytest.raises(ConfigError, match="arch must be one of mlp, cnn. Received: 'rnn'"):
        RunConfig(arch="rnn").validate()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_input_scaling_computes_what_rescaling_computes(dtype):
    """The same product, bit for bit, in the layer's float type; the factor is a weight."""
    from keras_bnreg.layers import InputScaling

    pixels = np.random.default_rng(3).integers(0, 256, size=(32, 784)).astype("uint8")
    for scale in (1 / 255, 4 / 255, 6 / 255, 0.1):
        ours = InputScaling(scale, dtype=dtype)
        theirs = keras.layers.Rescaling(np.float64(scale), dtype=dtype)
        np.testing.assert_array_equal(np.asarray(ours(pixels)), np.asarray(theirs(pixels)))
        assert [w.trainable for w in ours.weights] == [False]
        assert ours.factor.dtype == dtype


def test_input_scaling_saves_its_scale_and_is_never_trained(tmp_path, small_dataset):
    from keras_bnreg import input_scale
    from keras_bnreg.layers import InputScaling

    model = build_mlp((8,), input_scale=4 / 255, seed=1)
    assert isinstance(model.get_layer("input_scaling"), InputScaling)
    model.compile("adam", "categorical_crossentropy")
    x, y = small_dataset.x_train[:256], keras.utils.to_categorical(small_dataset.y_train[:256])
    model.fit(x, y, epochs=1, verbose=0)
    assert model.get_layer("input_scaling").factor.numpy() == np.float32(4 / 255)
    path = tmp_path / "scaled.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert input_scale(loaded) == 4 / 255
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_saved_model_records_the_package_version_that_wrote_it(tmp_path):
    import json
    import zipfile

    import keras_bnreg
    from keras_bnreg import written_by

    path = tmp_path / "model.keras"
    build_mlp((4,), input_scale=1 / 255).save(path)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    (scaling,) = [layer for layer in config["config"]["layers"] if layer["name"] == "input_scaling"]
    assert scaling["config"]["written_by"] == f"keras-bnreg {keras_bnreg.__version__}"
    config_file = json.dumps(config).replace(keras_bnreg.__version__, "0.0.1-older")
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(tmp_path / "older.keras", "w") as new:
        for item in old.namelist():
            data = config_file if item == "config.json" else old.read(item)
            new.writestr(item, data)
    assert (
        written_by(keras.models.load_model(tmp_path / "older.keras")) == "keras-bnreg 0.0.1-older"
    )
    assert written_by(keras.models.load_model(path)) == f"keras-bnreg {keras_bnreg.__version__}"


def test_only_the_packages_input_scaling_layer_gives_a_models_input_scale():
    """A Keras `Rescaling` named input_scaling is some other model's preprocessing: not read
    as the package's input scaling (nothing is guessed from a layer's name)."""
    from keras_bnreg import input_scale

    inputs = keras.Input((784,))
    x = keras.layers.Rescaling(np.float64(3 / 255), name="input_scaling")(inputs)
    assert input_scale(keras.Model(inputs, keras.layers.Dense(5)(x))) is None
    assert input_scale(build_mlp((5,), input_scale=3 / 255)) == pytest.approx(3 / 255, rel=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_epsilon_weight_gives_stock_outputs_and_is_what_call_reads(training):
    """Bit for bit the stock layer's outputs; and the traced graph reads the weight (a
    compiled model serves another epsilon once the weight is reset), not a constant."""
    rng = np.random.default_rng(4)
    x = rng.normal(loc=1.5, scale=2.0, size=(64, 6)).astype("float32")
    ours = trained_like_layer()
    plain = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.9)
    plain.build((None, 6))
    plain.set_weights(ours.get_weights()[:4])
    assert [v.name for v in ours.weights][4:] == ["epsilon"]
    assert ours.epsilon_weight.trainable is False
    np.testing.assert_array_equal(ours(x, training=training), plain(x, training=training))

    call = tf_function(ours, training)
    before = np.asarray(call(x))
    ours.epsilon_weight.assign(0.5)
    other = keras.layers.BatchNormalization(epsilon=0.5, momentum=0.9)
    other.build((None, 6))
    other.set_weights(ours.get_weights()[:4])
    after = np.asarray(call(x))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, other(x, training=training), rtol=1e-6, atol=1e-6)
    assert ours.epsilon == 1e-3  # the Python attribute is restored after each call


def tf_function(layer, training):
    import tensorflow as tf  # a traced, XLA-compiled call, as fit makes it

    return tf.function(lambda x: layer(x, training=training), jit_compile=True)


def test_saved_bn_layers_hold_the_stock_four_variables(tmp_path):
    model = build_mlp((5,), input_dim=7, bn_epsilon=(1e-4,))
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        (tmp_path / "w.h5").write_bytes(archive.read("model.weights.h5"))
    with h5py.File(tmp_path / "w.h5", "r") as store:
        groups = [name for name in store["layers"] if "batch_normalization" in name]
        assert [len(store[f"layers/{name}/vars"].keys()) for name in groups] == [4, 4]
    loaded = keras.models.load_model(path, safe_mode=True)
    for name in ("hidden1_bn", "output_bn"):
        assert loaded.get_layer(name).epsilon_weight.numpy() == np.float32(1e-4)
