"""keras-bnreg: does batch normalization set a per-node L2 rate alpha = sqrt(w^T R w)?

Importing the package registers its Keras layers, so saved models load with plain
`keras.models.load_model` after `import keras_bnreg`. It never imports Ray.

The project's command lines set `KERAS_BNREG_DEFER_KERAS=1` before they import the package
(only if it is not imported yet), so that `--help` and bad input answer without TensorFlow's
start-up (seconds); the layers are then registered when a model is first built or loaded. The
package removes the variable when it reads it: nothing inherits it.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide the CPU-only cuInit error

_LAZY = {
    "InputScaling": "keras_bnreg.layers",
    "InspectableBatchNormalization": "keras_bnreg.layers",
    "RegularizationMonitor": "keras_bnreg.monitor",
    "RunConfig": "keras_bnreg.config",
    "build_mlp": "keras_bnreg.models",
    "dense_bn_pairs": "keras_bnreg.models",
    "find_pairs": "keras_bnreg.pairs",
    "input_scale": "keras_bnreg.models",
    "training_seed": "keras_bnreg.models",
    "measure_model": "keras_bnreg.monitor",
}
__all__ = sorted(_LAZY)
__version__ = "0.1.0"

# Consumed here, so that processes this one starts (sweep workers, kernels) register eagerly.
if os.environ.pop("KERAS_BNREG_DEFER_KERAS", None) != "1":
    from keras_bnreg import quiet

    with quiet.filtered_stderr():  # TensorFlow's known start-up lines (see quiet.py)
        from keras_bnreg.layers import InspectableBatchNormalization  # noqa: F401 (registers both)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_bnreg' has no attribute {name!r}")
