import json
import math

import pytest

from keras_bnreg import paper
from keras_bnreg.config import ConfigError, RunConfig


@pytest.mark.parametrize(
    "change, message",
    [
        ({"amplitude": 0.0}, "amplitude must be a finite number > 0. Received: 0.0"),
        ({"amplitude": math.nan}, "amplitude must be a finite number > 0"),
        ({"amplitude": math.inf}, "amplitude must be a finite number > 0"),
        ({"snr": -1.0}, "snr must be a finite number > 0. Received: -1.0"),
        ({"lr": 0.0}, "lr must be"),
        ({"init_std": -0.01}, "init_std must be"),
        ({"epochs": 0}, "epochs must be an integer >= 1. Received: 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"monitor_every": 0}, "monitor_every"),
        ({"hidden": ()}, "hidden needs at least one width"),
        ({"hidden": (300, 0)}, "hidden width must be"),
        ({"bn_epsilon": (1e-3, 1e-3, 1e-3)}, "bn_epsilon takes 1 value or one per BN layer"),
        ({"bn_epsilon": (0.0,)}, "bn_epsilon must be"),
        ({"bn_momentum": 1.0}, "bn_momentum must be in"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of adam, sgd"),
        ({"run_name": "../escape"}, "run name must be a plain file name"),
    ],
)
def test_validation_names_the_value(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        RunConfig(**change).validate()


def test_defaults_are_the_paper_protocol():
    config = RunConfig().validate()
    assert config.hidden == paper.PROTOCOL["hidden"]
    assert config.batch_size == paper.PROTOCOL["batch_size"]
    assert config.lr == paper.PROTOCOL["lr"] and config.optimizer == paper.PROTOCOL["optimizer"]
    assert config.epsilons == (1e-3, 1e-3)


def test_run_names():
    assert RunConfig(amplitude=4).name == "amp4_seed0"
    assert RunConfig(amplitude=1, snr=0.5, seed=3).name == "amp1_seed3_snr0.5"
    assert RunConfig(run_name="mine").name == "mine"


def test_dict_round_trip_through_json():
    config = RunConfig(hidden=(300, 100), bn_epsilon=(1e-5, 1e-3, 0.1), snr=10.0)
    again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_reference_rows():
    assert paper.reference_row(4, None) == ("Table I", paper.TABLE1[4.0])
    assert paper.reference_row(1, 0.5) == ("Table II", paper.TABLE2[0.5])
    assert paper.reference_row(4, 10) is None
    assert paper.reference_row(1.5, None) is None
