"""The wheel is the product: what it holds and declares, and (slow) what it does when a user
installs it into an empty venv outside the checkout, with TensorFlow or with JAX alone."""

from __future__ import annotations

import ast
import email
import importlib.metadata
import json
import shutil
import subprocess
import sys
import zipfile

import pytest
from helpers import ROOT, person_environment, probe, write_npz

import keras_bnreg


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip` builds from the package's sources (copied: the build writes beside
    them, and the checkout stays untouched)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "keras_bnreg", source / "keras_bnreg", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
        + ["-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out,
    )
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("keras_bnreg-*.whl")
    return path


def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_wheel_holds_the_package_and_its_subpackages_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"keras_bnreg", next(t for t in tops if t.endswith(".dist-info"))}
    modules = ("__init__.py", "layers.py", "train.py", "reproduce.py", "studies/__init__.py")
    for module in (*modules, "studies/plan.py", "data/__init__.py", "data/idx.py"):
        assert f"keras_bnreg/{module}" in names, module


def test_metadata_names_version_licence_python_extras_and_commands(wheel):
    meta = metadata(wheel)
    assert meta["Version"] == keras_bnreg.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.10"
    assert "alpha" in meta["Summary"]
    assert set(meta.get_all("Provides-Extra")) == {
        "tf",
        "ray",
        "tensorboard",
        "notebooks",
        "dev",
        "all",
    }
    base = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("<")[0] for r in base) == ["keras", "numpy", "scipy"]
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("entry_points.txt"))
    )
    for script in (b"bnreg-train", b"bnreg-reproduce", b"bnreg-inspect"):
        assert script in entry_points


def imported_top_level_modules():
    """Every module name the package's sources import (at any depth, any place)."""
    names = set()
    for path in (ROOT / "keras_bnreg").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"keras_bnreg", "__future__"}


def test_every_import_of_the_package_is_declared_in_its_metadata(wheel):
    declared = {
        requirement.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0]
        for requirement in metadata(wheel).get_all("Requires-Dist")
    }
    declared = {name.strip().lower().replace("_", "-") for name in declared}
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for module in imported_top_level_modules():
        distributions = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not distributions & declared:
            undeclared[module] = sorted(distributions)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_import_and_the_clis_help_load_neither_keras_nor_tensorflow(tmp_path):
    result = probe("clis_help", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    heavy = {"keras", "tensorflow", "jax", "matplotlib"}
    assert heavy & set(json.loads(result.stdout.splitlines()[-1])) == set()


def test_dir_lists_the_lazy_names():
    assert {"RegularizationMonitor", "measure_model", "InputScaling"} <= set(dir(keras_bnreg))


def fresh_venv(path, *requirements):
    """An empty venv at `path` with `requirements` installed by pip, at the versions of the
    lock file (requirements.txt) so that the test installs what was tested elsewhere."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "requirements.txt")]
        + list(requirements),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return python


def run_in(python, folder, *args, backend=None, timeout=300):
    """`python args...` in `folder` with a person's environment and Keras's `backend`
    (None: Keras's default, TensorFlow)."""
    environment = person_environment()
    environment.pop("KERAS_BACKEND", None)
    if backend is not None:
        environment["KERAS_BACKEND"] = backend
    return subprocess.run(
        [str(python), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=environment,
        timeout=timeout,
    )


@pytest.mark.slow
def test_installed_with_tf_the_package_trains_inspects_and_monitors(wheel, tmp_path):
    python = fresh_venv(tmp_path / "venv", f"{wheel}[tf]")
    work = tmp_path / "work"
    work.mkdir()
    data = write_npz(work / "mnist.npz")
    flags = ["--amplitude", "4", "--epochs", "1", "--data", data, "--quiet"]
    trained = run_in(python, work, "-m", "keras_bnreg.train", *flags)
    assert trained.returncode == 0, trained.stderr
    model = work / "saved_models" / "amp4_seed0.keras"
    assert model.is_file() and (work / "runs" / "amp4_seed0" / "summary.json").is_file()
    inspected = run_in(python, work, "-m", "keras_bnreg.inspect", model, "--data", data)
    assert inspected.returncode == 0, inspected.stderr
    assert "alpha" in inspected.stdout and "test accuracy" in inspected.stdout
    script = tmp_path / "venv" / "bin" / "bnreg-reproduce"
    assert run_in(script, work, "--help").returncode == 0
    monitored = run_in(python, work, ROOT / "tests" / "installed" / "check_monitor.py")
    assert monitored.returncode == 0, monitored.stderr
    assert monitored.stdout.split()[-2:] == ["ok", "tensorflow"]


@pytest.mark.slow
def test_installed_with_jax_alone_the_monitor_works_and_training_names_the_extra(wheel, tmp_path):
    python = fresh_venv(tmp_path / "venv", str(wheel), "jax[cpu]")
    find = "import importlib.util as u; print(u.find_spec('tensorflow'))"
    assert run_in(python, tmp_path, "-c", find).stdout.strip() == "None", "TensorFlow installed"
    check = ROOT / "tests" / "installed" / "check_monitor.py"
    monitored = run_in(python, tmp_path, check, backend="jax")
    assert monitored.returncode == 0, monitored.stderr
    assert monitored.stdout.split()[-2:] == ["ok", "jax"]
    data = write_npz(tmp_path / "mnist.npz")
    refused = run_in(python, tmp_path, "-m", "keras_bnreg.train", "--data", data, backend="jax")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: training needs tensorflow, which is not installed: pip install 'keras-bnreg[tf]'"
    ]
    assert not (tmp_path / "runs").exists()
