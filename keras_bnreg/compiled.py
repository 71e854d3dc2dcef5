"""One compiled model per process, reused by the next run of the same shape.

A run's first epoch pays for tracing and XLA-compiling the training and validation
functions (seconds; most of a small run). A sweep worker runs many configs that differ only
in seed, amplitude, BN epsilon or noise (the amplitude is the model's `InputScaling` weight
and epsilon a weight of `InspectableBatchNormalization`, not constants of the graph), so
`model_for` keeps the last compiled model and, when the next
run has the same compiled shape (`shape_key`), resets it to exactly the state a freshly
built model would have instead of building and compiling again:

- every model variable (kernels, biases, BN's gamma, beta, moving statistics and epsilon,
  the input scaling's factor) takes the value of a freshly built, uncompiled model of the new
  config, made after `keras.utils.set_random_seed(seed)` as a fresh run makes it;
- every optimizer variable (iteration count, Adam's momentums and velocities) goes back to
  zero; the learning rate is part of the shape key, so it is never changed in place;
- the kernel initialisers, the input scaling's `scale` and BN's `epsilon` attributes are the
  new config's, so a saved model's config names its own seed, amplitude and epsilon;
- random streams: `keras.utils.set_random_seed` resets Python's, NumPy's, TensorFlow's and
  Keras's, and `fit` builds its shuffling `tf.data` pipeline afresh after it.

Anything compiled into the graph (BN momentum, widths, L2 rate, optimizer, batch
size, steps per call, XLA, float type) is in the key: a run that differs there gets a new
model, and the old one is released (`keras.backend.clear_session`), so a worker holds one
model at a time.
tests/test_compiled.py checks that runs made this way write the same history.csv and
nodes.csv as runs made alone in a fresh process.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_bnreg.config import RunConfig
from keras_bnreg.layers import InputScaling, InspectableBatchNormalization
from keras_bnreg.models import build_for, float_dtype

# False: every run builds and compiles its own model (the path before reuse; benchmarks).
REUSE = True

_cached = {"key": None, "model": None}


def shape_key(config: RunConfig, train_samples: int, steps_per_execution: int) -> tuple:
    """Everything a compiled model bakes in: the config's shape settings
    (`RunConfig.compiled_shape`), the training inputs and the resolved steps per call."""
    return (*config.compiled_shape(), train_samples, steps_per_execution)


def model_for(config: RunConfig, train_samples: int, build_model, steps_per_execution: int):
    """A compiled model in the state a fresh `build_model(config, train_samples)` has.

    Seeds every random stream with `config.seed` first, as a fresh run does.

    Args:
        config: the run's configuration.
        train_samples: training inputs (sizes the steps per compiled call).
        build_model: `experiment.build_model`, called when nothing can be reused.
        steps_per_execution: the resolved steps per compiled call (part of the shape key).
    """
    key = shape_key(config, train_samples, steps_per_execution)
    model = _cached["model"]
    if not REUSE or model is None or _cached["key"] != key:
        release()
        keras.utils.set_random_seed(config.seed)
        model = build_model(config, train_samples)
        if REUSE:
            _cached.update(key=key, model=model)
        return model
    keras.utils.set_random_seed(config.seed)
    reset(model, config)
    return model


def reset(model: keras.Model, config: RunConfig) -> None:
    """Give `model` a fresh model's weights for `config`, and a fresh optimizer state."""
    with float_dtype(config.dtype):  # the initial draws of a fresh model of this dtype
        fresh = build_for(config)
    model.set_weights(fresh.get_weights())
    for layer, fresh_layer in zip(model.layers, fresh.layers):
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            layer.kernel_initializer = fresh_layer.kernel_initializer
        if isinstance(layer, InputScaling):
            layer.scale = fresh_layer.scale
        if isinstance(layer, InspectableBatchNormalization):
            layer.epsilon = fresh_layer.epsilon
    optimizer = model.optimizer
    if optimizer is not None and optimizer.built:
        for variable in optimizer.variables:
            if variable.name != "learning_rate":
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
    model.stop_training = False


def release() -> None:
    """Drop the cached model and Keras's global state (a new shape, or the end of a sweep)."""
    _cached.update(key=None, model=None)
    keras.backend.clear_session()
