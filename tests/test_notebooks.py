"""Every notebook runs as Jupyter runs it: a fresh kernel whose working directory is
`notebooks/`, in a copy of the repository (its tracked files), with no path overrides;
only the small-setting switch and a small data file, which a person could set too."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest
from helpers import ROOT, copy_checkout
from nbclient import NotebookClient

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """The repository's tracked files copied to a temporary folder (layout as cloned)."""
    return copy_checkout(tmp_path_factory.mktemp("checkout") / "keras-bnreg")


@pytest.fixture()
def small_setting(small_npz, monkeypatch):
    monkeypatch.setenv("BNREG_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("BNREG_NOTEBOOK_DATA", str(small_npz))
    for name in ("BNREG_RESULTS", "BNREG_MODELS", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)


def execute(checkout, name) -> str:
    """Run notebook `name` from its own folder in `checkout`; return its text outputs."""
    folder = checkout / "notebooks"
    book = nbformat.read(folder / name, as_version=4)
    NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    outputs = [o for cell in book.cells for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue")
    assert any(o.output_type in ("display_data", "execute_result") for o in outputs)
    return "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream") + "\n".join(
        str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )


def test_there_are_five_notebooks_and_they_define_no_logic():
    assert [path.name for path in NOTEBOOKS] == [
        "01_table1_amplitude.ipynb",
        "02_table2_snr.ipynb",
        "03_fig2_alpha_per_node.ipynb",
        "04_saved_models.ipynb",
        "05_your_model.ipynb",
    ]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        source = "\n".join(cell.source for cell in book.cells if cell.cell_type == "code")
        assert "def " not in source and "class " not in source, path.name
        assert "notebook.find_root()" in source  # the root, shown in the first code cell
        assert "os.environ" not in source and "BNREG_" not in source
        assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_notebook_04_uses_the_model_make_train_wrote(checkout, small_setting, small_npz):
    """`train.py --amplitude 4` (what `make train` runs) from the checkout's root, then
    notebook 04 opened in Jupyter: it loads that model and trains none."""
    subprocess.run(
        [
            sys.executable,
            "train.py",
            "--amplitude",
            "4",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--data",
            str(small_npz),
        ],
        cwd=checkout,
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    model = checkout / "saved_models" / "amp4_seed0.keras"
    assert model.is_file()
    before = {p: p.stat().st_mtime_ns for p in checkout.rglob("*.keras")}
    notebooks_before = sorted(p.name for p in (checkout / "notebooks").iterdir())
    text = execute(checkout, "04_saved_models.ipynb")
    assert f"model: {model}" in text and "no model in" not in text
    assert {p: p.stat().st_mtime_ns for p in checkout.rglob("*.keras")} == before
    assert sorted(p.name for p in (checkout / "notebooks").iterdir()) == notebooks_before


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS[:3]])
def test_result_notebooks_run_and_write_into_the_repository_results(name, checkout, small_setting):
    notebooks_before = sorted(p.name for p in (checkout / "notebooks").iterdir())
    text = execute(checkout, name)
    assert str(checkout / "results") in text
    assert (checkout / "results" / "REPORT.md").is_file()
    assert sorted(p.name for p in (checkout / "notebooks").iterdir()) == notebooks_before


@pytest.mark.slow
def test_notebook_05_monitors_a_cnn(checkout, small_setting):
    text = execute(checkout, "05_your_model.ipynb")
    assert "{'conv1': (8,), 'conv2': (16,), 'head': (10,)}" in text
    assert "conv2_alpha_mean" in text
    assert "'angular_update_mean', 'conv2_angular_update_mean'" in text
