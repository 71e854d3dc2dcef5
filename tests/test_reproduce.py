"""reproduce.py on tiny sweeps: tables from run files, resume, report, equivalence, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import reproduce
from keras_bnreg import files, report, studies, sweep, tables

TINY = ["--epochs", "1", "--seeds", "1", "--hidden", "8", "--jobs", "1"]


@pytest.fixture(scope="module")
def table1_out(tmp_path_factory, small_npz):
    out = tmp_path_factory.mktemp("results")
    assert reproduce.main(["table1", "--data", str(small_npz), "--out", str(out), *TINY]) == 0
    return out


def test_table1_outputs_match_the_run_files(table1_out):
    rows = files.read_csv(table1_out / "table1.csv")
    assert [row["amplitude"] for row in rows] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert rows[2]["paper_l2"] == 0.0077 and rows[2]["paper_alpha_1e8"] == 3.9
    for row in rows:
        run = table1_out / "runs" / f"table1_amp{row['amplitude']:g}_seed0"
        nodes = files.read_csv(run / "nodes.csv")
        for quantity in ("alpha", "l2_bn", "l1"):
            expected = np.mean([node[quantity] for node in nodes])
            assert row[f"{quantity}_mean"] == pytest.approx(expected, rel=1e-12)
        assert row["n_seeds"] == 1 and row["n_diverged"] == 0
    for name in ("table1.md", "table1.png", "fig2.png", "REPORT.md", "ablation_d.png"):
        assert (table1_out / name).stat().st_size > 0, name
    text = (table1_out / "REPORT.md").read_text()
    assert "## Table I" in text and "verdict" in text and "## Fig. 2" in text
    assert "Data: npz" in text


def test_rerun_skips_completed_runs(table1_out, small_npz):
    settings = studies.Settings(
        out=str(table1_out), data=str(small_npz), epochs=1, seeds=1, hidden=(8,)
    )
    outcomes = sweep.run_sweep(studies.table1(settings), jobs=1, progress=False)
    assert {o.status for o in outcomes} == {"skipped"}
    changed = [c.replace(epochs=2) for c in studies.table1(settings)]
    assert not any(sweep.is_complete(c) for c in changed)
    assert all(
        sweep.is_complete(c.replace(threads=2, tensorboard="tb")) for c in studies.table1(settings)
    )


def test_runs_made_before_a_new_setting_existed_still_count_as_complete(table1_out, small_npz):
    settings = studies.Settings(
        out=str(table1_out), data=str(small_npz), epochs=1, seeds=1, hidden=(8,)
    )
    config = studies.table1(settings)[0]
    path = table1_out / "runs" / config.name / "config.json"
    saved = json.loads(path.read_text())
    older = {k: v for k, v in saved.items() if k not in ("l2", "validation_fraction")}
    files.write_json(path, older)
    try:
        assert sweep.is_complete(config)
        assert not sweep.is_complete(config.replace(l2=0.1))
    finally:
        files.write_json(path, saved)


def test_report_rebuilds_without_training(table1_out, capsys):
    before = (table1_out / "table1.csv").read_text()
    (table1_out / "table1.csv").unlink()
    (table1_out / "REPORT.md").unlink()
    assert reproduce.main(["report", "--out", str(table1_out)]) == 0
    assert (table1_out / "table1.csv").read_text() == before
    assert (table1_out / "REPORT.md").is_file()


def test_table2_with_noise_predictions(tmp_path, small_npz):
    assert reproduce.main(["table2", "--data", str(small_npz), "--out", str(tmp_path), *TINY]) == 0
    rows = files.read_csv(tmp_path / "table2.csv")
    assert [row["snr"] for row in rows] == [0.5, 1.0, 10.0, 100.0]
    assert all(row["pred_measured"] > 0 and row["pred_eq18"] > 0 for row in rows)
    # More noise, a bigger noise term: sigma^2 grows 200x from SNR 100 to 0.5.
    assert rows[0]["pred_eq19"] > rows[-1]["pred_eq19"]
    run = tables.read_run(tmp_path / "runs" / "table2_snr1_seed0")
    sigma2 = run.summary["data"]["noise_sigma"] ** 2
    expected = sigma2 * np.mean(
        run.nodes["gamma"] ** 2 * run.nodes["l2"] ** 2 / run.nodes["alpha"] ** 2
    )
    assert rows[1]["pred_eq18"] == pytest.approx(expected, rel=1e-9)
    assert "## Table II" in (tmp_path / "REPORT.md").read_text()


@pytest.mark.slow
def test_equivalence_amplitude_and_epsilon(tmp_path, small_npz):
    """(e): amplitude a with epsilon e trains exactly like amplitude 1 with e / a^2."""
    settings = studies.Settings(
        out=str(tmp_path), data=str(small_npz), epochs=1, seeds=1, hidden=(8,)
    )
    configs = studies.equivalence(settings, amplitudes=(2.0, 4.0))
    outcomes = sweep.run_sweep(configs, jobs=1, progress=False)
    assert {o.status for o in outcomes} == {"completed"}
    models = tmp_path / "models"
    reference = report.first_kernel(models / "abl_equiv_amp1.keras")
    for amplitude in (2, 4):
        kernel = report.first_kernel(models / f"abl_equiv_amp{amplitude}.keras")
        equivalent = report.first_kernel(models / f"abl_equiv_amp{amplitude}_as_amp1.keras")
        scale = np.max(np.abs(kernel))
        # Equal to float32 rounding (measured ~1e-6 relative after an epoch), while the
        # non-equivalent run differs by > 1e-3: two orders of magnitude apart.
        assert np.max(np.abs(kernel - equivalent)) <= 1e-5 * scale
        assert np.max(np.abs(kernel - reference)) > 1e-3 * scale
    text = report._ablation_e(tmp_path)
    assert "diff to equivalent run" in text


def test_aggregate_counts_diverged_runs_and_never_averages_them():
    def run(seed, status, alpha):
        nodes = {q: np.full(3, alpha) for q in tables.QUANTITIES} if status == "completed" else {}
        summary = {"status": status, "final": {"accuracy": 0.5, "val_accuracy": 0.4}}
        return tables.Run(f"r{seed}", {"amplitude": 2.0, "seed": seed}, summary, nodes)

    rows = tables.aggregate(
        [run(0, "completed", 1.0), run(1, "diverged", 0.0), run(2, "completed", 3.0)], "amplitude"
    )
    assert rows[0]["n_seeds"] == 2 and rows[0]["n_diverged"] == 1
    assert rows[0]["alpha_mean"] == 2.0 and rows[0]["alpha_std"] == pytest.approx(np.sqrt(2))


def test_loglog_slope_and_verdicts():
    x = np.array([2.0, 3, 4, 5, 6])
    assert tables.loglog_slope(x, 7 * x**-2.0) == pytest.approx(-2.0)
    assert tables.loglog_slope(x, 0.1 * x**1.5) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="positive"):
        tables.loglog_slope(x, -x)
    assert tables.paper_slopes()["l2"] == pytest.approx(-2.0, abs=0.1)
    assert tables.verdict(np.array([-2.01, -1.98, -2.03]), -2.02) == "reproduced"
    assert tables.verdict(np.array([-1.0, -0.99, -1.01]), -2.02) == "partly"
    assert tables.verdict(np.array([0.0, 0.001, -0.001]), -2.02) == "not reproduced"


@pytest.mark.parametrize(
    "args, message",
    [
        (["tables"], "invalid choice"),
        (["table1", "--seeds", "0"], "--seeds must be >= 1"),
        (["table1", "--jobs", "0"], "--jobs must be >= 1"),
        (["table1", "--data", "missing.npz"], "missing.npz: no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        reproduce.main([*args, "--out", str(tmp_path / "results")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "results").exists()


def test_report_without_runs_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        reproduce.main(["report", "--out", str(tmp_path)])
    assert stop.value.code == 2
    assert "no runs under" in capsys.readouterr().err


def test_timings_recorded(table1_out):
    assert json.loads((table1_out / "timings.json").read_text())["table1"] > 0
