"""keras-bnreg: does batch normalization set a per-node L2 rate alpha = sqrt(w^T R w)?

Importing the package registers its Keras layer, so saved models load with plain
`keras.models.load_model`. It never imports Ray.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide the CPU-only cuInit error

from keras_bnreg.config import RunConfig  # noqa: E402
from keras_bnreg.layers import InspectableBatchNormalization  # noqa: E402
from keras_bnreg.models import build_mlp, dense_bn_pairs  # noqa: E402
from keras_bnreg.monitor import RegularizationMonitor, measure_model  # noqa: E402
from keras_bnreg.pairs import find_pairs  # noqa: E402

__all__ = [
    "InspectableBatchNormalization",
    "RegularizationMonitor",
    "RunConfig",
    "build_mlp",
    "dense_bn_pairs",
    "find_pairs",
    "measure_model",
]
__version__ = "0.1.0"
