"""A worker's reused compiled model gives the same files as a run alone in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import PROBES, ROOT, without_timing

from keras_bnreg import files, manifest


def run_in_fresh_process(plan):
    """`probes.runs_in_one_worker(plan)` in a process of its own (not waited for)."""
    return subprocess.Popen(
        [sys.executable, str(PROBES), "runs_in_one_worker", json.dumps(plan)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("[")]


@pytest.mark.slow
def test_consecutive_runs_in_one_worker_equal_runs_made_alone(tmp_path, small_npz):
    from keras_bnreg.config import RunConfig

    base = RunConfig(
        data=str(small_npz),
        hidden=(16,),
        epochs=2,
        threads=1,
        save_model=False,
        out=str(tmp_path / "worker"),
    )
    # Seeds, amplitudes (InputScaling's weight) and epsilons (a weight of the BN layers)
    # differ from run to run; the BN momentum, a constant of the graph, changes at c, which
    # needs a model of its own.
    sequence = [
        base.replace(run_name="a", seed=0, amplitude=2.0),
        base.replace(run_name="b", seed=1, amplitude=3.0, bn_epsilon=(1e-2,)),  # reuses a's
        base.replace(run_name="c", seed=2, amplitude=3.0, bn_momentum=0.9),  # a new model
        base.replace(run_name="d", seed=3, amplitude=4.0, bn_momentum=0.9),  # diverges
        # e: d's digits and amplitude, so the monitor reuses the input moments d computed
        base.replace(run_name="e", seed=4, amplitude=4.0, bn_momentum=0.9, bn_epsilon=(1e-4,)),
        base.replace(run_name="f", seed=5, amplitude=2.0, bn_momentum=0.9),  # Ctrl-C
        base.replace(run_name="g", seed=6, amplitude=6.0, bn_momentum=0.9, bn_epsilon=(1e-5,)),
    ]
    alone_names = ["b", "e", "g"]
    worker = run_in_fresh_process(
        {"configs": [c.to_dict() for c in sequence], "interrupt": "f", "diverge": "d"}
    )
    alone = []
    for config in sequence:
        if config.name in alone_names:
            config = config.replace(out=str(tmp_path / "alone"))
            alone.append(
                run_in_fresh_process(
                    {"configs": [config.to_dict()], "interrupt": None, "diverge": None}
                )
            )
            if len(alone) == 2:  # two cores: at most three processes at a time
                finish(alone[0])
    lines = finish(worker)
    for process in alone:
        if process.returncode is None:
            finish(process)
    statuses = dict(lines[:-1])
    assert statuses == {
        "a": "completed",
        "b": "completed",
        "c": "completed",
        "d": "diverged",
        "e": "completed",
        "f": "interrupted",
        "g": "completed",
    }
    assert lines[-1] == [False, True, False, True, True, True, True]
    for name in alone_names:
        for table in ("history.csv", "nodes.csv", "nodes_output.csv"):
            ours = files.read_csv(tmp_path / "worker" / name / table)
            theirs = files.read_csv(tmp_path / "alone" / name / table)
            assert len(ours) == (
                2 if table == "history.csv" else 16 if table == "nodes.csv" else 10
            )
            assert without_timing(ours) == without_timing(theirs), (name, table)
        assert manifest.problem(tmp_path / "worker" / name) is None


def test_a_reused_model_takes_the_new_runs_amplitude_epsilon_and_seed():
    """Amplitude and epsilon are weights, not part of the compiled shape: a run with others
    gets the same model, holding its own values and recording them (saved config)."""
    from keras_bnreg import compiled, experiment, input_scale, training_seed
    from keras_bnreg.config import RunConfig

    base = RunConfig(hidden=(8,), epochs=1, data="bundled")
    try:
        first = compiled.model_for(
            base.replace(amplitude=2.0, seed=0), 512, experiment.build_model, 4
        )
        second = compiled.model_for(
            base.replace(amplitude=5.0, seed=7), 512, experiment.build_model, 4
        )
        assert second is first
        assert input_scale(second) == 5.0 / 255
        assert second.get_layer("input_scaling").factor.numpy() == np.float32(5.0 / 255)
        assert training_seed(second) == 7
        assert second.get_layer("input_scaling").get_config()["scale"] == 5.0 / 255
        third = compiled.model_for(base.replace(bn_epsilon=(1e-5,)), 512, experiment.build_model, 4)
        assert third is first
        for name in ("hidden1_bn", "output_bn"):
            assert third.get_layer(name).epsilon == 1e-5
            assert third.get_layer(name).epsilon_weight.numpy() == np.float32(1e-5)
        other = compiled.model_for(base.replace(bn_momentum=0.9), 512, experiment.build_model, 4)
        assert other is not first  # the momentum is a constant of the graph
    finally:
        compiled.release()
