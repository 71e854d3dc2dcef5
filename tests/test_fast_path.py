"""The fast path (XLA, many steps per compiled call: by default a whole epoch) computes what
a plain `model.fit` computes: same start, a few steps, same weights and BN statistics."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import synthetic_digits

from keras_bnreg import experiment
from keras_bnreg.config import RunConfig


def train_a_few_steps(config, x, y):
    keras.utils.set_random_seed(0)
    model = experiment.build_model(config, len(x))
    model.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)  # 4 steps
    return {w.path: np.asarray(w.numpy(), np.float64) for w in model.weights}


@pytest.fixture(scope="module")
def inputs():
    images, labels = synthetic_digits(512, 0)
    # raw pixels: experiment.build_model's first layer scales them by amplitude / 255
    return images.reshape(len(images), -1), keras.utils.to_categorical(labels, 10)


@pytest.mark.parametrize("optimizer, tolerance", [("sgd", 1e-4), ("adam", 2e-2)])
def test_fast_and_plain_paths_agree(optimizer, tolerance, inputs):
    fast = train_a_few_steps(RunConfig(optimizer=optimizer), *inputs)  # default: 4 steps a call
    plain = train_a_few_steps(
        RunConfig(optimizer=optimizer, steps_per_execution=1, jit_compile=False), *inputs
    )
    assert fast.keys() == plain.keys()
    start = experiment.build_model(RunConfig(), len(inputs[0])).get_weights()
    for (path, a), b, initial in zip(fast.items(), plain.values(), start):
        if path.endswith("/bias") and not path.endswith("_bn/bias"):
            # BN right after cancels a Dense bias: its gradient is zero in exact arithmetic,
            # so both paths hold only float noise there (Adam turns it into +-lr steps).
            continue
        scale = np.max(np.abs(b))
        assert np.max(np.abs(a - b)) <= tolerance * scale, path
        if "kernel" in path:  # the comparison is not vacuous: training moved the weights
            assert np.max(np.abs(b - initial)) > 100 * np.max(np.abs(a - b)), path


def test_dense_bias_before_bn_gets_no_real_gradient(inputs):
    weights = train_a_few_steps(RunConfig(optimizer="sgd"), *inputs)
    for path in ("hidden1/bias", "output/bias"):
        assert np.max(np.abs(weights[path])) < 1e-6, path  # lr 0.1 x float noise only


def test_default_steps_per_execution_is_one_epoch():
    config = RunConfig(batch_size=128)
    assert experiment.steps_per_execution(config, 60000) == 469  # ceil(60000 / 128)
    assert experiment.steps_per_execution(config, 100) == 1
    assert experiment.steps_per_execution(config.replace(steps_per_execution=7), 60000) == 7
    with pytest.raises(ValueError, match="train_samples"):
        experiment.steps_per_execution(config, None)
