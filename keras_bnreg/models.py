"""The paper's MLP, with BN right after every Dense layer, at any depth (or without BN);
the same protocol with convolutions (`build_cnn`)."""

from __future__ import annotations

import contextlib

import keras

from keras_bnreg.config import INPUT_DIM, per_layer_epsilons
from keras_bnreg.layers import InputScaling, InspectableBatchNormalization
from keras_bnreg.pairs import Pair, find_pairs

NUM_CLASSES = 10
INPUT_SCALING = "input_scaling"  # the name of the InputScaling layer that build_mlp adds


def training_seed(model: keras.Model) -> int | None:
    """The `seed` a model from `build_mlp` was made with (train.py's `--seed`, which also
    drew the bundled train/test split), read from its first Dense layer's initializer
    (`RandomNormal(seed=seed)`); None when the model does not record one."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            seed = getattr(layer.kernel_initializer, "seed", None)
            return seed if isinstance(seed, int) else None
    return None


def input_scale(model: keras.Model) -> float | None:
    """The scale of the model's `InputScaling` layer named `input_scaling` (`amplitude / 255`
    for a model that train.py saved), or None when the model has none (it takes scaled
    inputs, or scales them some other way)."""
    for layer in model.layers:
        if isinstance(layer, InputScaling) and layer.name == INPUT_SCALING:
            return float(layer.scale)
    return None


def written_by(model: keras.Model) -> str | None:
    """`"keras-bnreg <version>"`: the package version that saved a model from `build_mlp`
    or `build_cnn` (read from its `input_scaling` layer's config), the running version for
    a model built now; None when the model has no such layer."""
    for layer in model.layers:
        if isinstance(layer, InputScaling) and layer.name == INPUT_SCALING:
            return layer.written_by
    return None


@contextlib.contextmanager
def float_dtype(dtype):
    """Keras's float type and dtype policy set to `dtype` ("float32" or "float64") inside
    the block, restored after: what is built there (layers and their variables, hence the
    optimizer's slots; `keras.Input`; the loss) takes it, and `fit` casts inputs to it."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def build_mlp(
    hidden=(300,),
    *,
    init_std=0.01,
    bn_epsilon=(1e-3,),
    bn_momentum=0.99,
    seed=0,
    batchnorm=True,
    l2=0.0,
    input_scale=None,
    input_dim=INPUT_DIM,
    num_classes=NUM_CLASSES,
) -> keras.Model:
    """`input -> [InputScaling] -> [Dense -> BN -> ReLU] * len(hidden) -> Dense -> BN -> softmax`.

    Section IV of the paper: 784 -> 300 (ReLU) -> 10 (softmax), BN right after every
    Dense layer, kernels from a small Gaussian. Dense layers are named `hidden1`,
    `hidden2`, ..., `output`, their BN layers `<name>_bn`. With `batchnorm=False` the BN
    layers are left out (the explicit-L2 baseline the paper implies).

    Args:
        hidden: widths of the hidden blocks.
        init_std: std of the Gaussian kernel initialiser (biases start at zero).
        bn_epsilon: one epsilon for every BN layer, or one per BN layer in order.
        bn_momentum: BN moving-statistics momentum.
        seed: seed of the kernel initialisers.
        batchnorm: put a BN layer after every Dense layer.
        l2: explicit L2 rate on every kernel: the loss gains `l2 * sum(w^2)` per layer.
        input_scale: if set, an `InputScaling(input_scale)` layer (`layers.py`: a rescaling
            whose scale is a non-trainable weight) named `input_scaling` right after the
            input, so the model takes raw pixel values (0..255) and its first Dense layer
            sees `pixels * input_scale` (train.py: `amplitude / 255`). The saved model then
            carries its input scaling. None: inputs are used as given.
    """
    names = [f"hidden{i + 1}" for i in range(len(hidden))] + ["output"]
    widths = list(hidden) + [num_classes]
    epsilons = per_layer_epsilons(bn_epsilon, len(names))
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0. Received: {l2}")
    inputs = keras.Input(shape=(input_dim,), name="pixels")
    x = inputs
    if input_scale is not None:
        x = InputScaling(input_scale, name=INPUT_SCALING)(x)
    for index, (name, width, epsilon) in enumerate(zip(names, widths, epsilons)):
        x = keras.layers.Dense(
            width,
            kernel_initializer=keras.initializers.RandomNormal(stddev=init_std, seed=seed + index),
            kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
            name=name,
        )(x)
        if batchnorm:
            x = InspectableBatchNormalization(
                epsilon=epsilon, momentum=bn_momentum, name=f"{name}_bn"
            )(x)
        activation = "softmax" if name == "output" else "relu"
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return keras.Model(inputs, x, name="bn_mlp" if batchnorm else "mlp")


def build_cnn(
    hidden=(16, 32),
    *,
    init_std=0.01,
    bn_epsilon=(1e-3,),
    bn_momentum=0.99,
    seed=0,
    batchnorm=True,
    l2=0.0,
    input_scale=None,
    input_dim=INPUT_DIM,
    num_classes=NUM_CLASSES,
) -> keras.Model:
    """`input -> reshape 28x28x1 -> [Conv2D 3x3 -> BN -> ReLU] * len(hidden) -> global
    average pooling -> Dense -> BN -> softmax`: the MLP's protocol with convolutions.

    The first convolution keeps the 28 x 28 grid ("same" padding, stride 1), each later one
    halves it (stride 2). Layers are named `conv1`, `conv2`, ..., `output`, BN layers
    `<name>_bn`; arguments as for `build_mlp` (`input_scale`: the same `input_scaling`
    layer), with `hidden` the channels per block. It takes the same flat
    784-pixel inputs as the MLP.
    """
    names = [f"conv{i + 1}" for i in range(len(hidden))] + ["output"]
    epsilons = per_layer_epsilons(bn_epsilon, len(names))
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0. Received: {l2}")
    side = int(round(input_dim**0.5))
    if side * side != input_dim:
        raise ValueError(f"input_dim must be a square (an image). Received: {input_dim}")
    inputs = keras.Input(shape=(input_dim,), name="pixels")
    x = inputs
    if input_scale is not None:
        x = InputScaling(input_scale, name=INPUT_SCALING)(x)
    x = keras.layers.Reshape((side, side, 1), name="image")(x)
    for index, (name, epsilon) in enumerate(zip(names, epsilons)):
        common = {
            "kernel_initializer": keras.initializers.RandomNormal(
                stddev=init_std, seed=seed + index
            ),
            "kernel_regularizer": keras.regularizers.L2(l2) if l2 > 0 else None,
            "name": name,
        }
        if name == "output":
            x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
            x = keras.layers.Dense(num_classes, **common)(x)
        else:
            stride = 1 if index == 0 else 2
            x = keras.layers.Conv2D(hidden[index], 3, strides=stride, padding="same", **common)(x)
        if batchnorm:
            x = InspectableBatchNormalization(
                epsilon=epsilon, momentum=bn_momentum, name=f"{name}_bn"
            )(x)
        activation = "softmax" if name == "output" else "relu"
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return keras.Model(inputs, x, name="bn_cnn" if batchnorm else "cnn")


ARCHITECTURES = {"mlp": build_mlp, "cnn": build_cnn}


def build_for(config) -> keras.Model:
    """The uncompiled model a `RunConfig` describes (its architecture, widths, init, BN
    settings, explicit L2 and input scaling `amplitude / 255`), in Keras's current dtype."""
    return ARCHITECTURES[config.arch](
        config.hidden,
        init_std=config.init_std,
        bn_epsilon=config.epsilons,
        bn_momentum=config.bn_momentum,
        seed=config.seed,
        batchnorm=config.batchnorm,
        l2=config.l2,
        input_scale=config.amplitude / 255.0,
    )


def dense_bn_pairs(model: keras.Model) -> list[Pair]:
    """The model's Dense/Conv -> BN pairs from its layer graph (`pairs.find_pairs`)."""
    return find_pairs(model)
