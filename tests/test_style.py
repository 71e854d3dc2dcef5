"""The code's shape: ruff-clean (configured in pyproject.toml), no module over ~500 lines, no
import circle between the package's modules, no machine's own paths in tracked files."""

import ast
import re
import subprocess
import sys

from helpers import ROOT

from keras_bnreg.studies import REGISTRY

PACKAGE = ROOT / "keras_bnreg"


def test_ruff_check_and_format():
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules) -> set[str]:
    """The package's modules that `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name in modules} - {module_name(path)}


def test_no_module_is_over_500_lines():
    long = {
        module_name(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, long


def test_no_import_circle():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: imports_of(path, modules) for name, path in modules.items()}

    def reaches(start):
        seen, stack = set(), [start]
        while stack:
            for following in graph[stack.pop()]:
                if following not in seen:
                    seen.add(following)
                    stack.append(following)
        return seen

    circles = sorted(name for name in graph if name in reaches(name))
    assert not circles, f"modules on an import circle: {circles}"


def test_no_tracked_file_names_a_machines_own_folders():
    """Docs and code name paths relative to the checkout, never this machine's folders."""
    machine_path = re.compile(r"/(?:work|home|root|Users)/[\w.-]+")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    found = {}
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".py", ".md", ".ipynb", ".toml", ".txt", ".cfg", "") and path.is_file():
            hits = machine_path.findall(path.read_text(errors="replace"))
            if hits:
                found[name] = hits[:3]
    assert not found, found


def test_the_readmes_layout_names_every_module_and_only_existing_ones():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout\n", 1)[1].split("```")[1]
    words = set(re.findall(r"[\w]+", block))
    expected = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    # The studies themselves are listed by REGISTRY (adding one touches no other file).
    studies = {path.stem for path in (PACKAGE / "studies").glob("*.py")}
    expected |= studies - {"__init__", *REGISTRY}
    expected |= {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert expected <= words, f"missing from README's layout: {sorted(expected - words)}"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    existing = {name.rsplit("/", 1)[-1] for name in files}
    named = set(re.findall(r"[\w]+\.py\b", block))
    assert named <= existing, f"in README's layout but not in the tree: {named - existing}"


def test_no_test_module_imports_another():
    """Shared test code lives in helpers.py (and fixtures in conftest.py, which pytest loads)."""
    tests = {path.stem for path in (ROOT / "tests").glob("*.py")} - {"helpers", "probes"}
    for path in (ROOT / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not set(names) & tests, f"{path.name} imports {set(names) & tests}"
