"""Pairs from the layer graph, on every kind of model, each column against direct NumPy.

The monitor computes a fixed-input layer's alpha from input (patch) moments and a deeper
layer's from a streamed pass; the references here come from the other side: Keras's own
layer outputs (or NumPy on the inputs), one array at a time.
"""

import warnings

import keras
import numpy as np
import pytest
from helpers import IMAGES, VECTORS, bn_cnn, randomize_batchnorm
from helpers import as_numpy as numpy

from keras_bnreg import InspectableBatchNormalization, RegularizationMonitor, measure_model, pairs
from keras_bnreg.measures import conv_patches


def expected_columns(model, layer, bn, x):
    """Every column from Keras's output of `layer` in inference mode, and NumPy."""
    kernel = numpy(layer.kernel)
    bias = numpy(layer.bias) if layer.use_bias else 0.0
    output = keras.Model(model.inputs[0], layer.output)(x, training=False)
    z = numpy(output).reshape(-1, kernel.shape[-1]) - bias
    columns = kernel.reshape(-1, kernel.shape[-1])
    gamma, beta = numpy(bn.gamma), numpy(bn.beta)
    mean, var = numpy(bn.moving_mean), numpy(bn.moving_variance)
    folded = columns * gamma / np.sqrt(var + bn.epsilon)
    return {
        "alpha": np.sqrt((z**2).mean(0)),
        "alpha_centered": z.std(0),
        "alpha_moving": np.sqrt(var + (mean - bias) ** 2),
        "l1": np.abs(columns).sum(0),
        "l2": np.sqrt((columns**2).sum(0)),
        "l1_bn": np.abs(folded).sum(0),
        "l2_bn": np.sqrt((folded**2).sum(0)),
        "gamma": gamma,
        "beta": beta,
        "moving_mean": mean,
        "moving_variance": var,
    }


def assert_tables_match(model, tables, x, names):
    assert list(tables) == names
    for name in names:
        layer = model.get_layer(name)
        bn = next(p.bn for p in pairs.find_pairs(model) if p.name == name)
        for column, value in expected_columns(model, layer, bn, x).items():
            np.testing.assert_allclose(
                tables[name][column], value, rtol=2e-4, atol=1e-6, err_msg=f"{name}.{column}"
            )


def cnn(padding, strides, dilation=1, bn=None):
    return bn_cnn(padding, strides, dilation, bn)


@pytest.mark.parametrize(
    "padding, strides, dilation, bn",
    [
        ("same", 2, 1, keras.layers.BatchNormalization),
        ("valid", 1, 2, InspectableBatchNormalization),
        ("valid", 3, 1, keras.layers.BatchNormalization),
    ],
)
def test_conv2d_every_column(padding, strides, dilation, bn):
    model = cnn(padding, strides, dilation, bn)
    found = pairs.find_pairs(model)
    assert [(p.name, p.bn.name, p.fixed_inputs) for p in found] == [
        ("conv1", "bn1", True),
        ("conv2", "bn2", False),
        ("dense", "bn3", False),
    ]
    tables = measure_model(model, IMAGES, chunk_size=7)
    assert_tables_match(model, tables, IMAGES, ["conv1", "conv2", "dense"])


def test_conv_patches_reproduce_keras_convolution():
    for padding, strides, dilation in [("same", (2, 1), (1, 1)), ("valid", (1, 1), (2, 1))]:
        layer = keras.layers.Conv2D(
            3, (3, 2), strides=strides, padding=padding, dilation_rate=dilation, use_bias=False
        )
        output = numpy(layer(IMAGES[:5]))
        patches = conv_patches(IMAGES[:5], (3, 2), strides, padding, dilation)
        kernel = numpy(layer.kernel).reshape(-1, 3)
        np.testing.assert_allclose(patches @ kernel, output.reshape(-1, 3), rtol=1e-4, atol=1e-3)


def test_conv1d_with_rescaling():
    inputs = keras.Input((20, 1))
    x = keras.layers.Rescaling(0.01)(inputs)
    x = keras.layers.Conv1D(3, 4, strides=2, padding="same", name="conv")(x)
    outputs = keras.layers.BatchNormalization()(x)
    model = randomize_batchnorm(keras.Model(inputs, outputs))
    x = VECTORS[:, :, None]
    assert_tables_match(model, measure_model(model, x), x, ["conv"])


def mlp_layers(bn=keras.layers.BatchNormalization):
    return [
        keras.layers.Rescaling(4 / 255),
        keras.layers.Dense(8, name="hidden1"),
        bn(name="hidden1_bn"),
        keras.layers.ReLU(),
        keras.layers.Dense(6, use_bias=False, name="output"),
        bn(name="output_bn"),
    ]


def test_functional_with_rescaling_matches_numpy_on_the_scaled_inputs():
    inputs = keras.Input((20,))
    x = inputs
    for layer in mlp_layers(InspectableBatchNormalization):
        x = layer(x)
    model = randomize_batchnorm(keras.Model(inputs, x))
    tables = measure_model(model, VECTORS)
    assert_tables_match(model, tables, VECTORS, ["hidden1", "output"])
    scaled = VECTORS.astype(np.float64) * 4 / 255
    z = scaled @ numpy(model.get_layer("hidden1").kernel)
    np.testing.assert_allclose(tables["hidden1"]["alpha"], np.sqrt((z**2).mean(0)), rtol=1e-5)


def test_sequential_with_input():
    model = randomize_batchnorm(keras.Sequential([keras.Input((20,)), *mlp_layers()]))
    assert_tables_match(model, measure_model(model, VECTORS), VECTORS, ["hidden1", "output"])


def test_sequential_without_input_in_fit():
    model = keras.Sequential(mlp_layers())
    model.compile("adam", "mse")
    monitor = RegularizationMonitor(VECTORS, chunk_size=16)
    model.fit(VECTORS, np.zeros((64, 6)), epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert_tables_match(model, monitor.latest, VECTORS, ["hidden1", "output"])


@keras.saving.register_keras_serializable(package="test_pairs")
class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.body = keras.Sequential([keras.Input((20,)), *mlp_layers()], name="body")

    def call(self, inputs):
        return self.body(inputs)


def subclassed():
    model = Subclassed()
    model(VECTORS[:2])
    randomize_batchnorm(model.body)
    return model


def test_subclassed_model_warns_and_measures_only_what_it_can():
    model = subclassed()
    with pytest.warns(UserWarning, match="is subclassed: Keras keeps no layer graph") as caught:
        tables = measure_model(model, VECTORS)
    assert len([w for w in caught if issubclass(w.category, UserWarning)]) == 1
    assert list(tables) == ["hidden1", "output"]
    expected = expected_columns(
        model.body, model.body.get_layer("output"), model.body.get_layer("output_bn"), VECTORS
    )
    assert np.all(np.isnan(tables["output"]["alpha"]))
    for column in ("l2", "l1_bn", "alpha_moving", "gamma", "moving_variance"):
        np.testing.assert_allclose(tables["output"][column], expected[column], rtol=1e-5)


def test_pairs_follow_the_graph_not_the_layer_list():
    """Two branches: by position, `a` would be paired with `bn_b`'s neighbour."""
    inputs = keras.Input((20,))
    dense_a, dense_b = keras.layers.Dense(3, name="a"), keras.layers.Dense(4, name="b")
    bn_a, bn_b = (
        keras.layers.BatchNormalization(name="bn_a"),
        keras.layers.BatchNormalization(name="bn_b"),
    )
    left, right = dense_a(inputs), dense_b(inputs)
    outputs = keras.layers.Concatenate()([bn_b(right), bn_a(left)])
    model = randomize_batchnorm(keras.Model(inputs, outputs))
    found = pairs.find_pairs(model)
    assert sorted((p.name, p.bn.name) for p in found) == [("a", "bn_a"), ("b", "bn_b")]
    names = [p.name for p in found]
    assert_tables_match(model, measure_model(model, VECTORS), VECTORS, names)


def unmeasurable(kind):
    inputs = keras.Input((20,))
    good = keras.layers.BatchNormalization(name="good_bn")(
        keras.layers.Dense(2, name="good")(inputs)
    )
    if kind == "activation inside":
        x = keras.layers.Dense(3, activation="relu", name="bad")(inputs)
        x = keras.layers.BatchNormalization(name="bad_bn")(x)
    elif kind == "activation between":
        x = keras.layers.Activation("tanh")(keras.layers.Dense(3, name="bad")(inputs))
        x = keras.layers.BatchNormalization(name="bad_bn")(x)
    elif kind == "feeds others":
        dense = keras.layers.Dense(3, name="bad")(inputs)
        x = keras.layers.Add()([keras.layers.BatchNormalization(name="bad_bn")(dense), dense])
    elif kind == "shared":
        shared = keras.layers.Dense(20, name="bad")
        x = keras.layers.BatchNormalization(name="bad_bn")(shared(shared(inputs)))
    elif kind == "other axis":
        x = keras.layers.Reshape((4, 5))(inputs)
        x = keras.layers.Dense(3, name="bad")(x)
        x = keras.layers.BatchNormalization(axis=1, name="bad_bn")(x)
        x = keras.layers.Flatten()(x)
    return keras.Model(inputs, [good, x])


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("activation inside", "applies activation 'relu' itself"),
        ("activation between", "an activation or other layer sits between 'bad' and BN"),
        ("feeds others", "'bad' also feeds add"),
        ("shared", "its input layer 'bad': it is shared \\(called 2 times\\)"),
        ("other axis", "normalises axis 1, not 'bad''s channel axis 2"),
    ],
)
def test_unmeasurable_layers_warn_once_and_are_left_out(kind, reason):
    model = unmeasurable(kind)
    with pytest.warns(UserWarning, match=f"'bad_bn' not measured: .*{reason}") as caught:
        tables = measure_model(model, VECTORS)
    assert len([w for w in caught if "not measured" in str(w.message)]) == 1
    assert list(tables) == ["good"]


def test_no_measurable_pair_is_a_value_error_at_train_begin():
    inputs = keras.Input((20,))
    x = keras.layers.Dense(3, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(x))
    model.compile("adam", "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="has no measurable Dense/Conv layer"):
            model.fit(
                VECTORS,
                np.zeros((64, 3)),
                epochs=1,
                verbose=0,
                callbacks=[RegularizationMonitor(VECTORS)],
            )


def test_primary_layer_is_decided_in_one_place():
    names = ["conv1", "conv2", "dense"]
    assert pairs.column_prefix("conv1", names) == ""
    assert pairs.column_prefix("dense", names) == "dense_"
    assert pairs.nodes_filename("conv1", names) == "nodes.csv"
    assert pairs.nodes_filename("conv2", names) == "nodes_conv2.csv"
    assert pairs.history_columns(names)[0] == "l1_mean"
    assert "conv2_alpha_std" in pairs.history_columns(names)
    assert pairs.primary(pairs.find_pairs(cnn("same", 1))).name == "conv1"


def nested():
    block = keras.Sequential([keras.Input((20,)), *mlp_layers()], name="block")
    inputs = keras.Input((20,))
    model = keras.Model(inputs, block(inputs))
    randomize_batchnorm(block)
    return model, block


def test_pairs_inside_a_nested_sub_model_keep_their_weights_columns():
    model, block = nested()
    match = r"holds sub-models: their pairs \['block/hidden1', 'block/output'\]"
    with pytest.warns(UserWarning, match=match):
        tables = measure_model(model, VECTORS)
    expected = expected_columns(
        block, block.get_layer("output"), block.get_layer("output_bn"), VECTORS
    )
    assert np.all(np.isnan(tables["output"]["alpha"]))
    np.testing.assert_allclose(tables["output"]["l2_bn"], expected["l2_bn"], rtol=1e-5)


def test_causal_conv1d_is_measured_by_the_streamed_pass():
    inputs = keras.Input((20, 1))
    x = keras.layers.Conv1D(3, 3, padding="causal", dilation_rate=2, name="conv")(inputs)
    model = randomize_batchnorm(keras.Model(inputs, keras.layers.BatchNormalization()(x)))
    x = VECTORS[:, :, None]
    assert_tables_match(model, measure_model(model, x), x, ["conv"])


def test_input_scaling_keeps_the_first_layer_on_fixed_inputs():
    """InputScaling has a weight, but training never changes it: its Dense layer is
    measured from input moments computed once; a trained layer in between ends that."""
    from keras_bnreg import build_mlp
    from keras_bnreg.layers import InputScaling

    model = build_mlp((6,), input_dim=20, input_scale=4 / 255)
    assert [pair.fixed_inputs for pair in pairs.find_pairs(model)] == [True, False]
    randomize_batchnorm(model)
    tables = measure_model(model, VECTORS)
    assert_tables_match(model, tables, VECTORS, ["hidden1", "output"])

    inputs = keras.Input((20,))
    x = keras.layers.Dense(20, name="trained")(InputScaling(0.5)(inputs))
    x = keras.layers.Dense(4, name="hidden1")(x)
    x = InspectableBatchNormalization(name="hidden1_bn")(x)
    assert [pair.fixed_inputs for pair in pairs.find_pairs(keras.Model(inputs, x))] == [False]


def sequential(*layers):
    return randomize_batchnorm(keras.Sequential([keras.Input((20,)), *layers]))


def functional_mlp():
    inputs = keras.Input((20,))
    x = inputs
    for layer in mlp_layers(InspectableBatchNormalization):
        x = layer(x)
    return randomize_batchnorm(keras.Model(inputs, x))


def conv1d(padding="same", dilation=1):
    inputs = keras.Input((20, 1))
    x = keras.layers.Rescaling(0.01)(inputs)
    x = keras.layers.Conv1D(3, 4, padding=padding, dilation_rate=dilation, name="conv")(x)
    return randomize_batchnorm(keras.Model(inputs, keras.layers.BatchNormalization()(x)))


def sequential_built_without_input():
    model = keras.Sequential(mlp_layers())
    model.build((None, 20))
    return randomize_batchnorm(model)


def input_scaling_mlp():
    from keras_bnreg import build_mlp

    return randomize_batchnorm(build_mlp((6,), input_dim=20, input_scale=4 / 255))


def two_branches():
    inputs = keras.Input((20,))
    left = keras.layers.BatchNormalization(name="bn_a")(keras.layers.Dense(3, name="a")(inputs))
    right = keras.layers.BatchNormalization(name="bn_b")(keras.layers.Dense(4, name="b")(inputs))
    return randomize_batchnorm(keras.Model(inputs, keras.layers.Concatenate()([right, left])))


# Every kind of model these tests build, with the inputs it takes.
MODEL_KINDS = {
    "cnn same stride 2": lambda: (cnn("same", 2), IMAGES),
    "cnn valid dilated, InspectableBN": lambda: (
        cnn("valid", 1, 2, InspectableBatchNormalization),
        IMAGES,
    ),
    "cnn valid stride 3": lambda: (cnn("valid", 3), IMAGES),
    "conv1d with rescaling": lambda: (conv1d(), VECTORS[:, :, None]),
    "causal conv1d": lambda: (conv1d("causal", 2), VECTORS[:, :, None]),
    "functional with rescaling": lambda: (functional_mlp(), VECTORS),
    "sequential with BN": lambda: (sequential(*mlp_layers()), VECTORS),
    "sequential built without Input": lambda: (sequential_built_without_input(), VECTORS),
    "sequential without BN": lambda: (
        sequential(
            keras.layers.Dense(8, name="hidden1"),
            keras.layers.ReLU(),
            keras.layers.Dense(6, name="output"),
        ),
        VECTORS,
    ),
    "sequential Dense->Dense": lambda: (
        sequential(keras.layers.Dense(8, name="a"), keras.layers.Dense(6, name="b")),
        VECTORS,
    ),
    "subclassed": lambda: (subclassed(), VECTORS),
    "two branches": lambda: (two_branches(), VECTORS),
    "nested sub-model": lambda: (nested()[0], VECTORS),
    "input scaling": lambda: (input_scaling_mlp(), VECTORS),
    **{
        f"unmeasurable: {kind}": (lambda kind=kind: (unmeasurable(kind), VECTORS))
        for kind in ("activation inside", "activation between", "feeds others", "shared")
    },
}


def measured_with_warnings(model, x):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = measure_model(model, x)
    ours = [w for w in caught if "keras_bnreg" in w.filename and w.category is UserWarning]
    return tables, sorted({str(w.message) for w in ours})


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_a_loaded_model_measures_like_the_built_one(kind, tmp_path):
    """Loading rebuilds a Sequential several times (each layer then has several calls, in
    graphs the model no longer uses): the pairs come from the model's own graph."""
    model, x = MODEL_KINDS[kind]()
    built, built_warnings = measured_with_warnings(model, x)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    tables, loaded_warnings = measured_with_warnings(loaded, x)
    assert list(tables) == list(built) and built
    assert loaded_warnings == built_warnings
    for name, table in built.items():
        assert list(tables[name]) == list(table)
        for column, values in table.items():
            np.testing.assert_allclose(
                tables[name][column], values, rtol=1e-6, err_msg=f"{kind}: {name}.{column}"
            )


def test_include_and_exclude_by_name_path_or_pattern():
    model = cnn("same", 2)
    assert list(measure_model(model, IMAGES, include="conv*")) == ["conv1", "conv2"]
    assert list(measure_model(model, IMAGES, exclude=["conv2"])) == ["conv1", "dense"]
    assert list(measure_model(model, IMAGES, include=["dense"])) == ["dense"]  # now primary
    with pytest.raises(ValueError, match="include pattern 'conv9' matches no measurable layer"):
        measure_model(model, IMAGES, include=["conv1", "conv9"])
    with pytest.raises(ValueError, match="no measurable Dense/Conv layer left after include"):
        measure_model(model, IMAGES, exclude="*")
    with pytest.raises(ValueError, match="include must be a layer name or pattern"):
        RegularizationMonitor(IMAGES, include=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a layer left out on purpose: no warning
        tables = measure_model(unmeasurable("activation inside"), VECTORS, exclude="bad")
    assert list(tables) == ["good"]


def repeated_names():
    """Two sub-models built alike: each holds a layer named `dense` and one named `bn`."""

    def block(name):
        layers = [keras.layers.Dense(4, name="dense"), keras.layers.BatchNormalization(name="bn")]
        return keras.Sequential([keras.Input((20,)), *layers], name=name)

    inputs = keras.Input((20,))
    x = keras.layers.Concatenate()([block("left")(inputs), block("right")(inputs)])
    x = keras.layers.BatchNormalization(name="top_bn")(keras.layers.Dense(3, name="top")(x))
    return keras.Model(inputs, x)


def test_repeated_names_in_sub_models_are_keyed_by_path():
    model = randomize_batchnorm(repeated_names())
    with pytest.warns(UserWarning, match=r"their pairs \['left/dense', 'right/dense'\]"):
        tables = measure_model(model, VECTORS)
    assert list(tables) == ["top", "left/dense", "right/dense"]
    for side in ("left", "right"):
        kernel = numpy(model.get_layer(side).get_layer("dense").kernel)
        np.testing.assert_allclose(tables[f"{side}/dense"]["l2"], np.linalg.norm(kernel, axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(measure_model(model, VECTORS, include="right/*")) == ["right/dense"]
    assert pairs.nodes_filename("right/dense", list(tables)) == "nodes_right.dense.csv"
    assert "right/dense_alpha_moving_mean" in pairs.history_columns(list(tables))
