"""`tf.distribute.MirroredStrategy` on two logical CPU devices: the monitor's columns equal
those of the same weights measured on one device (a fresh process: devices are set up before
TensorFlow starts)."""

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT

SCRIPT = r"""
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np

sys.path.insert(0, sys.argv[1])
from helpers import IMAGES, LABELS, STEP
from helpers import bn_classifier as network

from keras_bnreg import RegularizationMonitor, measure_model

LEARNING_RATE = 0.05
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
keras.utils.set_random_seed(0)
with strategy.scope():
    model = network()
    model.compile(keras.optimizers.SGD(LEARNING_RATE), "sparse_categorical_crossentropy")
pipelines = {
    "arrays": IMAGES,
    "tf.data": tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).shuffle(40, seed=1).batch(8),
}
report = {"replicas": strategy.num_replicas_in_sync}
for name, data in pipelines.items():
    monitor = RegularizationMonitor(data)
    model.fit(IMAGES, LABELS, batch_size=8, epochs=2, verbose=0, callbacks=[monitor])
    twin = network()  # one device, the same weights
    twin.set_weights(model.get_weights())
    expected = measure_model(twin, IMAGES)
    worst = 0.0
    for layer, table in expected.items():
        for column, values in table.items():
            if column not in STEP:
                got = monitor.latest[layer][column]
                worst = max(worst, float(np.max(np.abs(got - values) / (np.abs(values) + 1e-12))))
    kernel = np.asarray(twin.get_layer("conv").kernel.value).reshape(-1, 4).astype(np.float64)
    sgd = LEARNING_RATE / np.linalg.norm(kernel, axis=0) ** 2
    report[name] = {
        "layers": list(monitor.latest),
        "worst_relative_difference": worst,
        "effective_lr_error": float(
            np.max(np.abs(monitor.latest["conv"]["effective_lr"] / sgd - 1))
        ),
        "turned": bool(np.all(monitor.latest["conv"]["angular_update"] > 0)),
    }
print("REPORT " + json.dumps(report))
"""


@pytest.mark.slow  # a process of its own: about 10 s
def test_mirrored_strategy_columns_equal_single_device():
    environment = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "tests")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    assert report["replicas"] == 2
    for name in ("arrays", "tf.data"):
        assert report[name]["layers"] == ["conv", "conv2", "head"]
        assert report[name]["worst_relative_difference"] < 1e-6, report
        assert report[name]["effective_lr_error"] < 1e-6, report
        assert report[name]["turned"]
