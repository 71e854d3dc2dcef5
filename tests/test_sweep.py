"""Sweeps: complete means intact, one sweep per results directory, workers die with it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, completed_run_dir

from keras_bnreg import manifest, sweep
from keras_bnreg.config import RunConfig


def test_a_run_is_complete_only_while_every_file_matches_its_manifest(tmp_path):
    config, run_dir = completed_run_dir(tmp_path)
    assert manifest.problem(run_dir) is None and sweep.is_complete(config)
    listed = json.loads((run_dir / "manifest.json").read_text())["files"]
    assert set(listed) == {"config.json", "history.csv", "nodes.csv", "summary.json"}
    nodes = run_dir / "nodes.csv"
    text = nodes.read_text()
    nodes.write_text(text[: len(text) // 2])  # cut short, as a full disk or a kill would
    assert "nodes.csv changed" in manifest.problem(run_dir)
    assert not sweep.is_complete(config)
    nodes.write_text(text)
    assert sweep.is_complete(config)
    nodes.unlink()
    assert manifest.problem(run_dir) == "nodes.csv is missing"
    config, run_dir = completed_run_dir(tmp_path, "old")
    (run_dir / "manifest.json").unlink()  # a run from before manifests, or killed before it
    assert not sweep.is_complete(config)
    (run_dir / "manifest.json").write_text("[1, 2")
    assert manifest.problem(run_dir) == "no readable manifest.json"


def test_a_second_sweep_into_the_same_directory_is_refused(tmp_path, capsys):
    with sweep.locked(tmp_path) as path:
        assert f"pid {os.getpid()}" in path.read_text()
        with pytest.raises(sweep.SweepLocked, match=f"another sweep \\(pid {os.getpid()}"):
            with sweep.locked(tmp_path):
                pass
    with sweep.locked(tmp_path):  # released at the end
        pass
    assert capsys.readouterr().err == ""


def test_an_unreachable_ray_address_fails_within_seconds():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ValueError, match=f"--address 127.0.0.1:{port}: no Ray head reachable"):
        sweep.check_ray_address(f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match="expected host:port"):
        sweep.check_ray_address("nonsense")
    assert time.monotonic() - start < 10


# --- the reproduce.py parent, its workers, signals (subprocess, as a person runs it) ---


def children(pid):
    """Pids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_sweep(tmp_path, data, out, epochs=300):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "reproduce.py"), "table1", "--seeds", "1", "--epochs"]
        + [str(epochs), "--hidden", "16", "--jobs", "2", "--data", str(data), "--out", str(out)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )


def wait_for(condition, timeout=240, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def run_name(directory_name):
    """A run's name from its directory: `<name>`, or `.<name>.partial-<pid>` while it runs."""
    if directory_name.startswith(".") and ".partial-" in directory_name:
        return directory_name[1:].rsplit(".partial-", 1)[0]
    return directory_name


def started(out):
    """Runs that a worker has begun writing."""
    return sorted({run_name(p.parent.name) for p in (Path(out) / "runs").glob("*/config.json")})


def training(out):
    """Runs that have finished at least one epoch."""
    return sorted({run_name(p.parent.name) for p in (Path(out) / "runs").glob("*/history.csv")})


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_parent_ends_every_worker(tmp_path, small_npz, how):
    out = tmp_path / "results"
    parent = start_sweep(tmp_path, small_npz, out)
    try:
        wait_for(lambda: started(out), what="a run to start")
        workers = children(parent.pid)
        assert len([w for w in workers if alive(w)]) >= 2, workers
        parent.send_signal(how)
        parent.wait(timeout=30)
        wait_for(lambda: not any(alive(w) for w in workers), timeout=10, what="workers to end")
        if how == signal.SIGTERM:
            assert parent.returncode == 143
            assert "Traceback" not in parent.stderr.read()
        with sweep.locked(out / "runs"):  # free again, whoever held it
            pass
    finally:
        for pid in [parent.pid, *children(parent.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_two_sweeps_into_one_out_and_ctrl_c(tmp_path, small_npz):
    out = tmp_path / "results"
    first = start_sweep(tmp_path, small_npz, out)
    try:
        wait_for(lambda: training(out), what="a run to train")
        second = start_sweep(tmp_path, small_npz, out)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        lines = err.strip().splitlines()
        assert lines[-1].startswith(f"error: another sweep (pid {first.pid}, started ")
        assert f"is writing to {out / 'runs'}" in lines[-1] and "Traceback" not in err
        # One Ctrl-C (the terminal sends it to the whole process group): no new run starts,
        # the running ones stop as "interrupted" with a summary.json, exit 130.
        begun = set(started(out))
        os.killpg(first.pid, signal.SIGINT)
        _, err = first.communicate(timeout=120)
        assert first.returncode == 130, err
        assert "Traceback" not in err
        assert "stopped: " in err and "not started" in err
        assert set(started(out)) == begun  # and no staging directory is left
        assert not list((out / "runs").glob(".*.partial-*"))
        for name in training(out):
            summary = json.loads((out / "runs" / name / "summary.json").read_text())
            assert summary["status"] == "interrupted"
    finally:
        for pid in [first.pid, *children(first.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(tmp_path, small_npz):
    out = tmp_path / "results"
    parent = start_sweep(tmp_path, small_npz, out)
    try:
        wait_for(lambda: training(out), what="a run to train")
        workers = children(parent.pid)
        parent.send_signal(signal.SIGINT)  # to the parent alone: it passes it on
        time.sleep(0.3)
        parent.send_signal(signal.SIGINT)
        start = time.monotonic()
        _, err = parent.communicate(timeout=60)
        assert time.monotonic() - start < 10
        assert parent.returncode == 130 and "Traceback" not in err, err
        wait_for(lambda: not any(alive(w) for w in workers), timeout=10, what="workers to end")
    finally:
        for pid in [parent.pid, *children(parent.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_while_saving_leaves_an_interrupted_run_that_is_not_complete(
    tmp_path, small_npz, monkeypatch
):
    import keras

    from keras_bnreg import experiment

    def interrupted_save(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", interrupted_save)
    config = RunConfig(
        data=str(small_npz), hidden=(16,), epochs=1, out=str(tmp_path), models_dir=str(tmp_path)
    )
    result = experiment.run(config, verbose=0, notify=lambda message: None)
    assert result.status == "interrupted" and result.model_path is None
    summary = json.loads((tmp_path / config.name / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_completed"] == 1
    assert not (tmp_path / config.name / "manifest.json").exists()
    assert not sweep.is_complete(config) and not list(tmp_path.glob("*.keras"))


def test_a_free_worker_keeps_its_group_else_takes_one_no_busy_worker_holds():
    """Each worker compiles a group once: its own group first, then an unheld one."""
    from keras_bnreg.workers import _take

    pending = ["a1", "b1", "a2", "c1", "b2"]

    def group(task):
        return task[0]

    assert _take(pending, "b", {"a", "b"}, group) == "b1"
    assert _take(pending, "z", {"a"}, group) == "c1"  # the first group nobody holds
    assert _take(pending, None, {"a", "c"}, group) == "b2"
    assert _take(pending, "b", {"a"}, group) == "a1"  # only a left: share it
    assert pending == ["a2"]
