"""The effective-step study on runs made by hand: slopes, verdicts, the per-epoch table read
from history.csv, its section and figure."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import study_run

from keras_bnreg import files
from keras_bnreg.studies import effective_step, stats


def runs_with_steps(step_exponent, out, seeds=3):
    """Table I runs whose angle per epoch scales as amplitude ** step_exponent; alpha as
    amplitude (study_run); each with a two-epoch history.csv."""
    runs = []
    for seed in range(seeds):
        for amplitude in (2.0, 3.0, 4.0, 6.0):
            run = study_run("table1", seed, amplitude=amplitude)
            wobble = 1 + 0.01 * seed
            angle = 0.05 * wobble * amplitude**step_exponent
            run.nodes["angular_update"] = np.full(6, angle)
            run.nodes["effective_lr"] = np.full(6, angle / 32)
            history = [
                {"epoch": epoch, "angular_update_mean": angle * (3 - epoch)} for epoch in (1, 2)
            ]
            path = out / "runs" / run.name / "history.csv"
            files.write_csv(path, history, ["epoch", "angular_update_mean"])
            runs.append(run)
    return runs


def test_a_step_that_ignores_the_amplitude_does_not_follow_alpha(tmp_path):
    result = effective_step.analyse(runs_with_steps(0.0, tmp_path), tmp_path)
    rows = {r["quantity"]: r for r in result["effective_step_slopes"]}
    assert rows["alpha"]["slope_mean"] == pytest.approx(1.0, abs=0.2)
    assert rows["angular_update"]["slope_mean"] == pytest.approx(0.0, abs=1e-9)
    assert rows["angular_update"]["verdict"] == "no trend larger than delta"
    assert rows["angular_update"]["follows_alpha"] is False
    assert set(rows) == {"alpha", "angular_update"}  # effective_lr = angle / steps (Adam)
    epochs = result["effective_step_epochs"]
    assert len(epochs) == 8  # 4 amplitudes x 2 epochs
    first = next(r for r in epochs if r["amplitude"] == 2.0 and r["epoch"] == 1)
    assert first["angular_update_mean"] == pytest.approx(0.1 * np.mean([1.0, 1.01, 1.02]))
    assert first["n_seeds"] == 3


def test_a_step_that_grows_like_alpha_follows_it(tmp_path):
    result = effective_step.analyse(runs_with_steps(1.0, tmp_path), tmp_path)
    rows = {r["quantity"]: r for r in result["effective_step_slopes"]}
    assert rows["angular_update"]["follows_alpha"] is True
    assert rows["angular_update"]["verdict"] == "increases by at least delta"
    assert "follows alpha" in effective_step.answer(result["effective_step_slopes"])


def test_section_writes_the_figure_and_states_the_answer(tmp_path):
    text, written = effective_step.section(runs_with_steps(0.0, tmp_path), tmp_path)
    assert written == [tmp_path / "effective_step.png"] and written[0].stat().st_size > 10_000
    assert "does not follow alpha" in text
    assert stats.SLOPE_TOLERANCE == pytest.approx(0.1)
    assert "no trend larger than 0.1" in text


def test_runs_without_the_columns_give_no_section(tmp_path):
    runs = [study_run("table1", seed, amplitude=a) for seed in range(2) for a in (2.0, 4.0)]
    assert effective_step.section(runs, tmp_path) == ("", [])
