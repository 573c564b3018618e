"""The import-linter contracts of pyproject.toml ([tool.importlinter]): every module of the package
sits in one layer (cli > driver and post-training commands > tasks > runs > report > recipe | post
> training > models > data | metrics > config > errors), dependencies point down, and nothing in
the library imports the CLI. A new upward import fails this test, and so does a function-local
import of an nnrecipe module outside cli/ (the way a cycle used to be dodged)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def _local_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.module}"
            for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(fn)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nnrecipe")]


def test_every_module_is_in_a_layer():
    """A module missing from the layers contract would escape it: each top-level module and package
    of src/nnrecipe is named in pyproject.toml's layers."""
    text = (ROOT / "pyproject.toml").read_text()
    layers = text[text.index('type = "layers"'):text.index("]", text.index('type = "layers"'))]
    package = ROOT / "src" / "nnrecipe"
    names = {p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    names |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(n for n in names if f'"nnrecipe.{n}' not in layers and f" nnrecipe.{n}" not in layers)
    assert not missing, missing


def test_no_function_local_imports_of_the_package_outside_the_cli():
    """The CLI imports each command's module when that command runs (``nnrecipe --help`` stays
    fast); everywhere else imports sit at the top, where import-linter and a reader see them."""
    package = ROOT / "src" / "nnrecipe"
    found = [hit for path in sorted(package.rglob("*.py")) if "cli" not in path.relative_to(package).parts
             for hit in _local_imports(path)]
    assert not found, found
