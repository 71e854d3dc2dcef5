"""`pip install .` builds a wheel of the package and its subpackages, nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_holds_the_package_and_its_subpackages_only(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation"]
        + ["-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("keras_bnreg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"keras_bnreg", next(t for t in tops if t.endswith(".dist-info"))}
    for module in ("__init__.py", "layers.py", "studies/__init__.py", "theory/__init__.py"):
        assert f"keras_bnreg/{module}" in names, module
