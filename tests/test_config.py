import dataclasses
import json
import math

import pytest

from keras_bnreg import compiled, paper, sweep
from keras_bnreg.config import (
    ROLES,
    ConfigError,
    RunConfig,
    fields_with,
    per_layer_epsilons,
    setting,
)


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


def test_every_setting_states_its_role_and_whether_it_shapes_a_compiled_model():
    for item in dataclasses.fields(RunConfig):
        assert item.metadata.get("role") in ROLES, f"{item.name} has no role"
        assert isinstance(item.metadata.get("shape"), bool), f"{item.name}: shape?"
    with pytest.raises(ValueError, match="role must be one of science, speed, output"):
        setting(1, "a setting without a role", role="none")


def test_resume_grouping_and_compiled_shape_follow_the_roles():
    config = RunConfig(run_name="r")
    for name in fields_with(role="science"):
        changed = {
            "hidden": (8,),
            "bn_epsilon": (0.1,),
            "snr": 10.0,
            "data": "bundled",
            "data_dir": "d",
            "arch": "cnn",
            "optimizer": "sgd",
            "dtype": "float64",
        }.get(name)
        value = getattr(config, name)
        if changed is None:
            changed = (not value) if isinstance(value, bool) else value + 1
        other = config.replace(**{name: changed})
        assert set(config.science_differences(other.to_dict())) == {name}, name
        shaped = name in fields_with(shape=True)
        assert (sweep.group_key(other.to_dict()) != sweep.group_key(config.to_dict())) == shaped
        assert (compiled.shape_key(other, 600, 5) != compiled.shape_key(config, 600, 5)) == shaped
    # Speed and output settings never decide whether a run counts as done.
    others = {"threads": 2, "out": "elsewhere", "monitor_chunk": 7, "study": "x", "role": {"a": 1}}
    assert config.science_differences(config.replace(**others).to_dict()) == {}
    # A setting added after a run was made takes its default when the run is compared.
    saved = {k: v for k, v in config.to_dict().items() if k != "validation_fraction"}
    assert config.science_differences(saved) == {}
    assert config.replace(validation_fraction=0.1).science_differences(saved) == {
        "validation_fraction": (0.0, 0.1)
    }


def test_one_epsilon_or_one_per_bn_layer():
    assert per_layer_epsilons((1e-3,), 3) == (1e-3, 1e-3, 1e-3)
    assert per_layer_epsilons((1e-5, 1e-3), 2) == (1e-5, 1e-3)
    with pytest.raises(ConfigError, match=r"one per BN layer \(3\). Received: 2 values"):
        per_layer_epsilons((1e-5, 1e-3), 3)
