"""reproduce.py on tiny sweeps: tables from run files, resume, report, equivalence, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import ROOT, probe

from keras_bnreg import files, manifest, paper, report, reproduce, sweep
from keras_bnreg.studies import Settings, ablations, plan, readings, stats, table1
from keras_bnreg.studies.runs import Run, read_run
from keras_bnreg.studies.settings import record_request

TINY = ["--epochs", "1", "--seeds", "1", "--hidden", "8", "--jobs", "1"]


@pytest.fixture(scope="module")
def table1_out(tmp_path_factory, small_npz):
    """Table I's and then Table II's tiny sweeps into one results directory."""
    out = tmp_path_factory.mktemp("results")
    start = time.perf_counter()
    assert reproduce.main(["table1", "--data", str(small_npz), "--out", str(out), *TINY]) == 0
    (out.parent / f"{out.name}.table1_seconds").write_text(str(time.perf_counter() - start))
    assert reproduce.main(["table2", "--data", str(small_npz), "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.slow
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
    assert "npz (600 training images), 1 epoch, 1 seed, hidden 8" in text
    assert "means over the 8 hidden nodes" in text and "300 hidden" not in text
    assert "| L1 of w (raw kernel) | l1 |" in text  # the L1 column has rows of its own
    assert "derived;" in text and "Verdict rules:" in text
    for name in ("table1.csv", "table1_slopes.csv", "readings.csv"):
        assert "np." not in (table1_out / name).read_text(), name  # plain numbers only


@pytest.mark.slow
def test_rerun_skips_completed_runs(table1_out, small_npz):
    settings = Settings(out=str(table1_out), data=str(small_npz), epochs=1, seeds=1, hidden=(8,))
    outcomes = sweep.run_sweep(table1.configs(settings), jobs=1, progress=False)
    assert {o.status for o in outcomes} == {"skipped"}
    changed = [c.replace(epochs=2) for c in table1.configs(settings)]
    assert not any(sweep.is_complete(c) for c in changed)
    assert all(
        sweep.is_complete(c.replace(threads=2, tensorboard="tb")) for c in table1.configs(settings)
    )


@pytest.mark.slow
def test_runs_made_before_a_new_setting_existed_still_count_as_complete(table1_out, small_npz):
    settings = Settings(out=str(table1_out), data=str(small_npz), epochs=1, seeds=1, hidden=(8,))
    config = table1.configs(settings)[0]
    path = table1_out / "runs" / config.name / "config.json"
    saved = json.loads(path.read_text())
    older = {k: v for k, v in saved.items() if k not in ("l2", "validation_fraction")}
    files.write_json(path, older)
    manifest.write(path.parent)  # as that older run's own manifest would list it
    try:
        assert sweep.is_complete(config)
        assert not sweep.is_complete(config.replace(l2=0.1))
    finally:
        files.write_json(path, saved)
        manifest.write(path.parent)


@pytest.mark.slow
def test_report_rebuilds_without_training(table1_out, capsys):
    before = (table1_out / "table1.csv").read_text()
    (table1_out / "table1.csv").unlink()
    (table1_out / "REPORT.md").unlink()
    assert reproduce.main(["report", "--out", str(table1_out)]) == 0
    assert (table1_out / "table1.csv").read_text() == before
    assert (table1_out / "REPORT.md").is_file()


@pytest.mark.slow
def test_table2_with_noise_predictions(table1_out):
    tmp_path = table1_out
    rows = files.read_csv(tmp_path / "table2.csv")
    assert [row["snr"] for row in rows] == [0.5, 1.0, 10.0, 100.0]
    assert all(row["pred_measured"] > 0 and row["pred_eq18"] > 0 for row in rows)
    # More noise, a bigger noise term: sigma^2 grows 200x from SNR 100 to 0.5.
    assert rows[0]["pred_eq19"] > rows[-1]["pred_eq19"]
    run = read_run(tmp_path / "runs" / "table2_snr1_seed0")
    sigma2 = run.summary["data"]["noise_sigma"] ** 2
    expected = sigma2 * np.mean(
        run.nodes["gamma"] ** 2 * run.nodes["l2"] ** 2 / run.nodes["alpha"] ** 2
    )
    assert rows[1]["pred_eq18"] == pytest.approx(expected, rel=1e-9)
    assert "## Table II" in (tmp_path / "REPORT.md").read_text()


@pytest.mark.slow
def test_equivalence_amplitude_and_epsilon(tmp_path, small_npz):
    """(e): amplitude a with epsilon e trains exactly like amplitude 1 with e / a^2."""
    settings = Settings(out=str(tmp_path), data=str(small_npz), epochs=1, seeds=1, hidden=(8,))
    configs = ablations.equivalence(settings, amplitudes=(2.0, 4.0))
    outcomes = sweep.run_sweep(configs, jobs=1, progress=False)
    assert {o.status for o in outcomes} == {"completed"}
    models = tmp_path / "models"
    reference = ablations.first_kernel(models / "abl_equiv_amp1.keras")
    for amplitude in (2, 4):
        kernel = ablations.first_kernel(models / f"abl_equiv_amp{amplitude}.keras")
        equivalent = ablations.first_kernel(models / f"abl_equiv_amp{amplitude}_as_amp1.keras")
        scale = np.max(np.abs(kernel))
        # Equal to float32 rounding (measured ~1e-6 relative after an epoch), while the
        # non-equivalent run differs by > 1e-3: two orders of magnitude apart.
        assert np.max(np.abs(kernel - equivalent)) <= 1e-5 * scale
        assert np.max(np.abs(kernel - reference)) > 1e-3 * scale
    record_request(tmp_path, {"ablations": settings})  # what `reproduce.py ablations` records
    report.build_outputs(tmp_path)
    assert "diff to equivalent run" in (tmp_path / "REPORT.md").read_text()


def test_aggregate_counts_diverged_runs_and_never_averages_them():
    def run(seed, status, alpha):
        nodes = {q: np.full(3, alpha) for q in stats.QUANTITIES} if status == "completed" else {}
        summary = {"status": status, "final": {"accuracy": 0.5, "val_accuracy": 0.4}}
        return Run(f"r{seed}", {"amplitude": 2.0, "seed": seed}, summary, nodes)

    rows = stats.aggregate(
        [run(0, "completed", 1.0), run(1, "diverged", 0.0), run(2, "completed", 3.0)], "amplitude"
    )
    assert rows[0]["n_seeds"] == 2 and rows[0]["n_diverged"] == 1
    # 95% CI of the mean of (1, 3): t_{0.975, 1} * std / sqrt(2) = 12.706 * sqrt(2) / sqrt(2)
    assert rows[0]["alpha_mean"] == 2.0 and rows[0]["alpha_ci95"] == pytest.approx(
        12.7062, rel=1e-4
    )


def test_loglog_slope_and_verdicts():
    x = np.array([2.0, 3, 4, 5, 6])
    assert stats.loglog_slope(x, 7 * x**-2.0) == pytest.approx(-2.0)
    assert stats.loglog_slope(x, 0.1 * x**1.5) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="positive"):
        stats.loglog_slope(x, -x)
    assert stats.paper_slopes()["l2"] == pytest.approx(-2.0, abs=0.1)
    paper_rows = np.array([0.0322, 0.0134, 0.0077, 0.0049, 0.0035])
    slopes = np.array([-2.01, -1.98, -2.03])
    assert stats.verdict(slopes, -2.02, paper_rows * 1.5, paper_rows) == "reproduced"
    assert stats.verdict(slopes, -2.02, paper_rows * 200, paper_rows) == "slope only"
    assert stats.verdict(np.array([0.0, 0.01]), -2.02, paper_rows, paper_rows) == ("magnitude only")
    assert stats.verdict(np.array([-1.0, -0.99, -1.01]), -2.02, paper_rows * 9, paper_rows) == (
        "not reproduced"
    )
    assert stats.verdict(slopes, -2.02, derived=True) == "derived; slope matches"
    assert stats.verdict(np.array([]), -2.02) == "no data"
    # One seed: no interval, the least tolerance applies.
    assert stats.slope_matches([-1.95], -2.02) and not stats.slope_matches([-1.8], -2.02)


def test_confidence_interval_is_the_t_interval():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    expected = 3.18245 * np.std(values, ddof=1) / 2  # t_{0.975, 3} = 3.18245
    assert stats.confidence_half_width(values) == pytest.approx(expected, rel=1e-5)
    assert stats.confidence_half_width([1.0]) is None


def test_reproduce_and_the_sweep_name_the_same_executors():
    assert reproduce.EXECUTOR_NAMES == sweep.EXECUTOR_NAMES


@pytest.mark.slow
def test_a_table_uses_the_runs_that_record_its_study_not_their_names(table1_out, tmp_path):
    out = _copy_results(table1_out, tmp_path / "results")
    config = json.loads((out / "runs" / "table1_amp2_seed0" / "config.json").read_text())
    assert config["study"] == "table1" and config["role"] == table1.ROLE
    # The same run, recorded as another study's: Table I no longer uses it, whatever its name.
    files.write_json(out / "runs" / "table1_amp2_seed0" / "config.json", {**config, "study": "x"})
    report.build_outputs(out)
    assert [row["amplitude"] for row in files.read_csv(out / "table1.csv")] == [3, 4, 5, 6]
    assert "table1_amp2_seed0: settings differ from the last table1 command: study 'x'" in (
        (out / "REPORT.md").read_text()
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["tables"], "invalid choice"),
        (["table1", "--seeds", "0"], "--seeds must be >= 1"),
        (["table1", "--jobs", "0"], "--jobs must be >= 1"),
        (["table1", "--data", "missing.npz"], "missing.npz: no such file"),
        (["fig1", "--plan"], "--plan goes with a study or all, not fig1"),
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


@pytest.mark.slow
def test_the_sweep_time_is_recorded_and_reported(table1_out):
    measured = float((table1_out.parent / f"{table1_out.name}.table1_seconds").read_text())
    recorded = json.loads((table1_out / "timings.json").read_text())
    # table1's sweep (runs only) took part of the whole command, which the test timed.
    assert set(recorded) == {"table1", "table2"} and 0 < recorded["table1"] <= measured
    text = (table1_out / "REPORT.md").read_text()
    assert f"table1 {recorded['table1']:.0f} s, table2 {recorded['table2']:.0f} s" in text


def _copy_results(source, target):
    import shutil

    shutil.copytree(source, target)
    return target


@pytest.mark.slow
def test_runs_of_other_settings_are_left_out_and_never_averaged(table1_out, tmp_path):
    out = _copy_results(table1_out, tmp_path / "results")
    # A seed-1 run made by an earlier command with other settings (2 epochs).
    source, extra = out / "runs" / "table1_amp2_seed0", out / "runs" / "table1_amp2_seed1"
    import shutil

    shutil.copytree(source, extra)
    config = json.loads((extra / "config.json").read_text())
    files.write_json(extra / "config.json", {**config, "seed": 1, "epochs": 2})
    report.build_outputs(out)
    rows = files.read_csv(out / "table1.csv")
    assert [row["n_seeds"] for row in rows] == [1] * 5
    text = (out / "REPORT.md").read_text()
    assert "Left out: 1 run directories" in text
    assert "table1_amp2_seed1: not asked for by the last table1 command" in text
    # The command asks for 2 seeds at 1 epoch: the run is then left out for its epochs.
    record = json.loads((out / "requested.json").read_text())
    record["table1"]["seeds"] = 2
    files.write_json(out / "requested.json", record)
    report.build_outputs(out)
    assert [row["n_seeds"] for row in files.read_csv(out / "table1.csv")] == [1] * 5
    assert "epochs 2 (asked 1)" in (out / "REPORT.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated_nodes", "missing_nodes", "config_not_object"])
def test_report_on_a_damaged_run_leaves_it_out(damage, table1_out, tmp_path, capsys):
    out = _copy_results(table1_out, tmp_path / "results")
    run = out / "runs" / "table1_amp3_seed0"
    if damage == "truncated_nodes":
        lines = (run / "nodes.csv").read_text().splitlines()
        (run / "nodes.csv").write_text("\n".join(lines[:4]) + "\n")
    elif damage == "missing_nodes":
        (run / "nodes.csv").unlink()
    else:
        (run / "config.json").write_text("[1, 2]\n")
    assert reproduce.main(["report", "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "Left out: 1 run directories" in text and "table1_amp3_seed0" in text
    assert [row["amplitude"] for row in files.read_csv(out / "table1.csv")] == [2, 4, 5, 6]
    assert [row["snr"] for row in files.read_csv(out / "table2.csv")] == [0.5, 1, 10, 100]


@pytest.mark.slow
def test_report_on_only_diverged_runs_is_one_line(table1_out, tmp_path, capsys):
    out = _copy_results(table1_out, tmp_path / "results")
    for summary_path in (out / "runs").glob("*/summary.json"):
        summary = json.loads(summary_path.read_text())
        files.write_json(summary_path, {**summary, "status": "diverged"})
    with pytest.raises(SystemExit) as stop:
        reproduce.main(["report", "--out", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no completed run" in err[0] and "9 diverged" in err[0]


@pytest.mark.slow
def test_readings_reads_existing_runs_without_training(table1_out, tmp_path, small_npz):
    out = _copy_results(table1_out, tmp_path / "results")
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/summary.json")}
    # Other flags than the tables were run with: readings uses the recorded settings.
    args = ["readings", "--out", str(out), "--data", str(small_npz), "--epochs", "3"]
    assert reproduce.main([*args, "--jobs", "1"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/summary.json")} == before
    rows = files.read_csv(out / "readings.csv")
    assert {(r["table"], r["column"]) for r in rows} == {
        ("table1", "l1"),
        ("table1", "l2"),
        ("table1", "alpha"),
        ("table2", "l1"),
        ("table2", "l2"),
    }
    text = (out / "REPORT.md").read_text()
    assert (
        "## Readings of the paper" in text and "single consistent reading for both tables" in text
    )


def _synthetic_table1_runs():
    """Runs whose `gamma w / (w^T R w)` norms and alpha (read x 1e-8) equal the paper's
    Table I exactly: gamma 1, alpha the paper's, raw norms the paper's times alpha^2."""
    runs = []
    for seed in (0, 1):
        for amplitude, row in paper.TABLE1.items():
            alpha = row["alpha_1e8"] * 1e-8
            nodes = {
                "l1": np.full(3, row["l1"] * alpha**2),
                "l2": np.full(3, row["l2"] * alpha**2),
                "l1_bn": np.full(3, row["l1"] * 3),
                "l2_bn": np.full(3, row["l2"] * 3),
                "gamma": np.ones(3),
                "alpha": np.full(3, alpha),
                "alpha_centered": np.full(3, alpha * 3),
                "alpha_moving": np.full(3, alpha * 5),
            }
            config = {"amplitude": amplitude, "seed": seed}
            runs.append(
                Run(f"r{amplitude}_{seed}", config, {"status": "completed"}, nodes, study="table1")
            )
    return runs


def test_readings_find_the_reading_that_matches():
    rows = readings.analyse(_synthetic_table1_runs(), None)["readings"]

    def row(quantity, unit, column, squared=False):
        return next(
            r
            for r in rows
            if (r["quantity"], r["unit"], r["column"], r["squared"])
            == (quantity, unit, column, squared)
        )

    best = {r["column"]: r for r in readings.best_per_column(rows)}
    for column in ("l1", "l2"):
        assert (best[column]["quantity"], best[column]["unit"]) == (
            "gamma w / (w^T R w)",
            "[0,1]xA",
        )
        assert best[column]["mean_abs_log10_ratio"] == pytest.approx(0, abs=1e-12)
        assert best[column]["verdict"] == "reproduced"
        # The same function in [0, 255] pixel units: every weight reading / 255.
        same_runs = row("raw w", "[0,255]xA same runs", column)
        raw = row("raw w", "[0,1]xA", column)
        assert same_runs["log10_ratio_amplitude_2"] == pytest.approx(
            raw["log10_ratio_amplitude_2"] - np.log10(255)
        )
        assert row("raw w", "[0,1]xA", column, squared=True)["slope"] == pytest.approx(
            2 * row("raw w", "[0,1]xA", column)["slope"]
        )
    ratio = row("gamma w / (w^T R w)", "[0,1]xA", "l1")
    paper_ratio = np.mean([r["l1"] / r["l2"] for r in paper.TABLE1.values()])
    assert ratio["l1_over_l2"] == pytest.approx(paper_ratio)
    assert ratio["paper_l1_over_l2"] == pytest.approx(paper_ratio)
    assert best["alpha"]["quantity"] == "alpha = sqrt(w^T R w)"
    assert best["alpha"]["printed_alpha"] == "printed x 1e-8"
    consistent = readings.best_consistent(rows)
    assert (consistent["quantity"], consistent["unit"]) == ("gamma w / (w^T R w)", "[0,1]xA")
    assert consistent["alpha"] == "alpha = sqrt(w^T R w), printed x 1e-8"
    assert consistent["all_slopes_match"]
    assert consistent["worst_abs_log10_ratio"] == pytest.approx(0, abs=1e-9)


@pytest.mark.slow
def test_a_results_directory_of_another_layout_is_left_out_with_the_reason(table1_out, tmp_path):
    """Run directories whose config.json names no study are never guessed at: listed under
    "Left out" with the reason; without requested.json, no study has settings at all."""
    out = _copy_results(table1_out, tmp_path / "results")
    for path in (out / "runs").glob("table2_*/config.json"):
        config = json.loads(path.read_text())
        files.write_json(path, {k: v for k, v in config.items() if k not in ("study", "role")})
    report.build_outputs(out)
    text = (out / "REPORT.md").read_text()
    assert "Left out: 4 run directories" in text and "## Table II" not in text
    assert "table2_snr1_seed0: its config.json names no study" in text
    (out / "requested.json").unlink()
    with pytest.raises(ValueError, match="no readable requested.json records what was asked"):
        report.build_outputs(out)


def test_help_answers_before_keras_tensorflow_or_matplotlib_is_imported():
    result = subprocess.run(
        [sys.executable, "reproduce.py", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0 and "readings (which reading" in result.stdout
    answer = json.loads(probe("modules_after", "reproduce.py", "--help").stdout.splitlines()[-1])
    assert answer["exit_code"] == 0
    assert {"keras", "tensorflow", "matplotlib"} & set(answer["imported"]) == set()


def test_a_damaged_request_record_counts_as_no_record(tmp_path):
    record = {"table1": {"data": "bundled"}, "table2": "not settings", "depth": None}
    assert plan.settings_of("table1", record, tmp_path) is None  # nothing decides its runs
    record["ablations"] = {"data": "bundled", "epochs": 2, "seeds": 3, "hidden": [16]}
    settings = plan.settings_of("table1", record, tmp_path)  # (d) reads Table I's runs
    assert (settings.epochs, settings.seeds, settings.hidden) == (2, 3, (16,))
