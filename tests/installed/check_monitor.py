"""Run by tests/test_packaging.py with the interpreter of a fresh venv that has the built
wheel installed (outside the checkout): the monitor, measure_model, the layers and a saved
model's round trip on whatever Keras backend that venv has. Prints `ok <backend>`; any
failure is an exception (non-zero exit)."""

import importlib.metadata
import sys
import tempfile
from pathlib import Path

import keras_bnreg  # before keras: the package registers its layers when Keras loads

assert "tensorflow" not in sys.modules, "import keras_bnreg imported TensorFlow"
assert "keras" not in sys.modules, "import keras_bnreg imported Keras"
assert keras_bnreg.__version__ == importlib.metadata.version("keras-bnreg")
assert "site-packages" in keras_bnreg.__file__, keras_bnreg.__file__  # the wheel, not a checkout

import keras  # noqa: E402
import numpy as np  # noqa: E402

keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(256, 12)).astype("float32")
y = keras.utils.to_categorical(np.arange(256) % 3, 3)
inputs = keras.Input((12,))
hidden = keras_bnreg.InspectableBatchNormalization(name="bn1")(
    keras.layers.Dense(8, name="dense1")(inputs)
)
outputs = keras.layers.Activation("softmax")(
    keras.layers.BatchNormalization(name="bn2")(
        keras.layers.Dense(3, name="dense2")(keras.layers.Activation("relu")(hidden))
    )
)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="categorical_crossentropy")
monitor = keras_bnreg.RegularizationMonitor(x)
model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[monitor])

kernel = keras.ops.convert_to_numpy(model.get_layer("dense1").kernel).astype(np.float64)
expected = np.sqrt(np.mean((x.astype(np.float64) @ kernel) ** 2, axis=0))
np.testing.assert_allclose(monitor.latest["dense1"]["alpha"], expected, rtol=1e-5)
assert np.all(np.isfinite(monitor.latest["dense2"]["alpha"]))

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
assert isinstance(loaded.get_layer("bn1"), keras_bnreg.InspectableBatchNormalization)
tables = keras_bnreg.measure_model(loaded, x)
np.testing.assert_allclose(tables["dense1"]["alpha"], expected, rtol=1e-5)
print("ok", keras.backend.backend())
