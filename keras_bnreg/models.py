"""The paper's MLP, with BN right after every Dense layer, at any depth."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from keras_bnreg.layers import InspectableBatchNormalization

INPUT_DIM = 784
NUM_CLASSES = 10


def build_mlp(
    hidden=(300,),
    *,
    init_std=0.01,
    bn_epsilon=(1e-3,),
    bn_momentum=0.99,
    seed=0,
    input_dim=INPUT_DIM,
    num_classes=NUM_CLASSES,
) -> keras.Model:
    """`input -> [Dense -> BN -> ReLU] * len(hidden) -> Dense -> BN -> softmax`.

    Section IV of the paper: 784 -> 300 (ReLU) -> 10 (softmax), BN right after every
    Dense layer, kernels from a small Gaussian. Dense layers are named `hidden1`,
    `hidden2`, ..., `output`, their BN layers `<name>_bn`.

    Args:
        hidden: widths of the hidden blocks.
        init_std: std of the Gaussian kernel initialiser (biases start at zero).
        bn_epsilon: one epsilon for every BN layer, or one per BN layer in order.
        bn_momentum: BN moving-statistics momentum.
        seed: seed of the kernel initialisers.
    """
    names = [f"hidden{i + 1}" for i in range(len(hidden))] + ["output"]
    widths = list(hidden) + [num_classes]
    epsilons = list(bn_epsilon) * len(names) if len(bn_epsilon) == 1 else list(bn_epsilon)
    if len(epsilons) != len(names):
        raise ValueError(f"bn_epsilon needs 1 or {len(names)} values. Received: {len(bn_epsilon)}")
    inputs = keras.Input(shape=(input_dim,), name="pixels")
    x = inputs
    for index, (name, width, epsilon) in enumerate(zip(names, widths, epsilons)):
        x = keras.layers.Dense(
            width,
            kernel_initializer=keras.initializers.RandomNormal(stddev=init_std, seed=seed + index),
            name=name,
        )(x)
        x = InspectableBatchNormalization(epsilon=epsilon, momentum=bn_momentum, name=f"{name}_bn")(
            x
        )
        activation = "softmax" if name == "output" else "relu"
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return keras.Model(inputs, x, name="bn_mlp")


@dataclass(frozen=True)
class DenseBN:
    """One Dense layer and the BN layer right after it."""

    name: str
    dense: keras.layers.Dense
    bn: InspectableBatchNormalization


def dense_bn_pairs(model: keras.Model) -> list[DenseBN]:
    """Every Dense layer followed by an InspectableBatchNormalization, in order."""
    pairs, layers = [], model.layers
    for layer, following in zip(layers, layers[1:]):
        if isinstance(layer, keras.layers.Dense) and isinstance(
            following, InspectableBatchNormalization
        ):
            pairs.append(DenseBN(layer.name, layer, following))
    if not pairs:
        raise ValueError("the model has no Dense layer followed by InspectableBatchNormalization")
    return pairs
