"""Every notebook runs top to bottom in a fresh kernel (small setting, files in tmp only)."""

from __future__ import annotations

import os

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def environment(tmp_path_factory, small_npz):
    results = tmp_path_factory.mktemp("notebook_results")
    values = {
        "BNREG_NOTEBOOK_SMALL": "1",
        "BNREG_RESULTS": str(results),
        "BNREG_NOTEBOOK_DATA": str(small_npz),
        "BNREG_MODELS": str(tmp_path_factory.mktemp("notebook_models")),
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    yield results
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_there_are_four_notebooks_and_they_define_no_logic():
    assert [path.name for path in NOTEBOOKS] == [
        "01_table1_amplitude.ipynb",
        "02_table2_snr.ipynb",
        "03_fig2_alpha_per_node.ipynb",
        "04_saved_models.ipynb",
    ]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        source = "\n".join(cell.source for cell in book.cells if cell.cell_type == "code")
        assert "def " not in source and "class " not in source, path.name
        assert "import keras_bnreg" in source or "from keras_bnreg" in source
        assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, environment, tmp_path):
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in book.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type in ("display_data", "execute_result", "stream") for o in outputs)
    assert not list(tmp_path.glob("*.keras"))  # nothing written beside the notebook
