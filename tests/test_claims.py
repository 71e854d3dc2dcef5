"""The claims study's analysis (keras_bnreg.studies.claims), on runs made by hand."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import study_run

from keras_bnreg import files
from keras_bnreg.studies import claims


def test_trend_rule_reads_the_confidence_interval():
    falling = [
        study_run("table1", seed, amplitude=a, test=0.9 - 0.01 * a + 0.001 * seed)
        for seed in range(3)
        for a in (2.0, 4.0, 6.0)
    ]
    result = claims.trend(falling, "amplitude", claims.test_accuracy)
    assert result["verdict"] == "decreases by at least delta"
    assert result["smallest_effect"] == pytest.approx(0.01 / np.log(3))  # 1 point over 2..6
    flat = [
        study_run("table1", seed, amplitude=a, test=0.9 + 0.01 * (-1) ** (seed + int(a)))
        for seed in range(3)
        for a in (2.0, 4.0)
    ]
    flat_result = claims.trend(flat, "amplitude", claims.test_accuracy)
    assert flat_result["verdict"] == "no trend larger than delta"
    assert claims.trend([], "amplitude", claims.test_accuracy)["verdict"] == "no data"
    gap = claims.accuracy_gap(study_run("table1", 0, train=0.95, test=0.9))
    assert gap == pytest.approx(0.05)


def test_constraint_is_gamma_norm_squared_over_the_bn_scale():
    run = study_run("table1", 0)
    np.testing.assert_allclose(claims.constraint(run), 1.5 * 4.0 / 3.0)  # sqrt(8 + 1) = 3
    rows = claims.constraint_rows([run])
    assert rows[0]["median"] == pytest.approx(2.0)
    assert claims.constraint_verdict(rows) == "holds"  # within a factor 2 of 1
    assert claims.constraint_verdict([{**rows[0], "median": 2.5}]) == "does not hold"


def test_alpha_exponent_against_the_input_second_moment():
    runs = [study_run("table1", s, amplitude=a) for s in range(3) for a in (2.0, 3.0, 4.0, 6.0)]
    row = claims.exponent_row(runs)  # alpha ~ a, second moment ~ a^2: exponent 1/2
    assert row["slope_mean"] == pytest.approx(0.5, abs=0.1)
    assert row["eq3_exponent_half"] and not row["caption_exponent_1"]


def test_table2_caption_confronted_with_the_paper_and_the_runs():
    runs = [study_run("table2", s, snr=snr) for s in range(3) for snr in (0.5, 1.0, 10.0, 100.0)]
    rows = {row["quantity"]: row for row in claims.caption_table2_rows(runs)}
    # against its own caption
    assert rows["paper's Table II L2"]["verdict"] == "increases by at least delta"
    assert rows["L2 of w (raw)"]["slope_mean"] == pytest.approx(0.5)
    assert rows["L2 of w (raw)"]["verdict"] == "increases by at least delta"


def test_alpha_over_epochs_and_the_auto_tuning_rule(tmp_path):
    run = study_run("table1", 0, amplitude=2.0)
    history = [{"epoch": e, "alpha_mean": value} for e, value in ((1, 1.0), (2, 1.5), (3, 1.8))]
    row = claims.alpha_over_epochs(run, history)
    assert row["alpha_initial_expected"] == pytest.approx(0.01 * np.sqrt(784 * 0.4))
    assert row["largest_factor_from_epoch1"] == pytest.approx(1.8)
    assert claims.auto_tuning_verdict([row]) == "set in the first epoch"
    moving = claims.alpha_over_epochs(run, [*history, {"epoch": 4, "alpha_mean": 3.0}])
    assert claims.auto_tuning_verdict([moving]) == "tuned during training"
    files.write_csv(tmp_path / "runs" / run.name / "history.csv", history, ["epoch", "alpha_mean"])
    (found,) = claims.auto_tuning_rows([run], tmp_path)
    assert found["epochs"] == 3 and found["study"] == "table1"


def test_section_writes_every_claim(tmp_path):
    runs = [study_run("table1", s, amplitude=a) for s in range(2) for a in (2.0, 4.0)]
    runs += [study_run("table2", s, snr=snr) for s in range(2) for snr in (1.0, 10.0)]
    text, written = claims.section(runs, tmp_path)
    for heading in ("**1.", "**2.", "**3.", "**4.", "**5."):
        assert heading in text
    assert {p.name for p in written} >= {"claims_regularization.csv", "claims_constraint.csv"}
    assert "Rules: *trend*" in text
