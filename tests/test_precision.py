"""Mixed precision: the monitor measures in float32 (sums in float64) whatever the policy,
through a `LossScaleOptimizer`, and leaves the model's policies as they were."""

import keras
import numpy as np
import pytest
from helpers import IMAGES, LABELS, STEP, assert_same_columns, bn_classifier
from helpers import as_numpy as numpy

from keras_bnreg import RegularizationMonitor, measure_model

LEARNING_RATE = 0.05


def under_policy(policy, build):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return build()
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_is_measured_in_float32(policy):
    keras.utils.set_random_seed(0)

    def compiled():
        model = bn_classifier()
        model.compile(keras.optimizers.SGD(LEARNING_RATE), "sparse_categorical_crossentropy")
        return model

    model = under_policy(policy, compiled)
    assert model.get_layer("conv").compute_dtype == policy.removeprefix("mixed_")
    monitor = RegularizationMonitor(IMAGES)
    model.fit(IMAGES, LABELS, batch_size=8, epochs=2, verbose=0, callbacks=[monitor])
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # Half-precision outputs hold 3 (float16) or 2 (bfloat16) digits: rtol 1e-6 needs float32.
    twin = bn_classifier()
    twin.set_weights(model.get_weights())
    assert_same_columns(monitor.latest, measure_model(twin, IMAGES), rtol=1e-6, skip=STEP)
    assert [layer.dtype_policy.name for layer in model.layers[2:4]] == [policy, policy]
    norms = np.linalg.norm(numpy(model.get_layer("conv").kernel).reshape(-1, 4), axis=0)
    np.testing.assert_allclose(
        monitor.latest["conv"]["effective_lr"], LEARNING_RATE / norms**2, rtol=1e-6
    )
    assert np.all(monitor.latest["conv"]["angular_update"] > 0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_passes_compute_in_float32_and_restore_the_policy(policy):
    from keras_bnreg.measurer import computing_in_float32

    def dtype(probe):  # a probe's traced function keeps the dtypes of its first call
        return keras.backend.standardize_dtype(probe.predict_on_batch(IMAGES).dtype)

    model = under_policy(policy, bn_classifier)
    assert dtype(keras.Model(model.input, model.get_layer("conv2").output)) == policy[6:]
    probe = keras.Model(model.input, model.get_layer("conv2").output)
    with computing_in_float32(probe):
        assert dtype(probe) == "float32"
    assert model.get_layer("conv2").dtype_policy.name == policy
