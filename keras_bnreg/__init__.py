"""keras-bnreg: does batch normalization set a per-node L2 rate alpha = sqrt(w^T R w)?

`import keras_bnreg` is cheap: it imports neither Keras nor TensorFlow. It registers the
package's layers with Keras as soon as Keras is imported (at once if it already is), so a
saved model loads with plain `keras.models.load_model` after `import keras_bnreg`, on any
Keras backend; Keras imported after it starts without TensorFlow's known start-up lines
(`quiet.py`). The names below load their module on first use. It never imports Ray.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide the CPU-only cuInit error

__version__ = "0.1.0"

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
    "written_by": "keras_bnreg.models",
    "measure_model": "keras_bnreg.monitor",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_bnreg' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})


def _register_layers() -> None:
    """Import `keras_bnreg.layers`, whose decorators register the layers with Keras."""
    try:
        importlib.import_module("keras_bnreg.layers")
    except Exception as error:  # never break the user's `import keras`
        warnings.warn(
            f"keras_bnreg could not register its layers with Keras: {error}", stacklevel=2
        )


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Wraps the import of the `keras` package: once Keras has run, the layers register.

    Asked first for every import until `keras` comes; then it takes itself off
    `sys.meta_path` and hands the real finder's spec back with its loader wrapped.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        from keras_bnreg import quiet  # the standard library only

        with quiet.filtered_stderr():  # TensorFlow's known start-up lines, if it is the backend
            self.loader.exec_module(module)
        _register_layers()


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
