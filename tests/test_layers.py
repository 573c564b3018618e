"""The import-linter contracts of pyproject.toml ([tool.importlinter]): every module of the package
sits in one layer (cli > driver and post-training commands > tasks > runs > report > recipe | post
> training > models > data | metrics > config > errors), dependencies point down, and nothing in
the library imports the CLI. A new upward import fails this test, and so does a function-local
import of an nnrecipe module outside cli/ (the way a cycle used to be dodged).

And the console belongs to the CLI: outside src/nnrecipe/cli/, no module uses `print` (called, or
passed on as a callable) or touches ``sys.stdout`` / ``sys.stderr`` (also ``__stdout__`` /
``__stderr__``, ``from sys import stderr``). The library returns data and logs what it reports
while it runs (see `nnrecipe.cli`); a new console write fails this test with its file and line."""

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
    assert "3 kept, 0 broken" in done.stdout


LIBRARY = ROOT / "src" / "nnrecipe"
CONSOLE_OWNER = LIBRARY / "cli"
# (file, class) whose body may write to the console: the live progress bar (rich draws it) is a
# display while training runs, not a summary of results
ALLOWED = {("training/callbacks.py", "ProgressBar")}
STREAMS = {"stdout", "stderr", "__stdout__", "__stderr__"}


def console_writes(source: str, skip_classes: set[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, what) for each use of `print` and each access to a sys stream in `source`, outside
    the classes named in `skip_classes`."""
    found: list[tuple[int, str]] = []

    class Finder(ast.NodeVisitor):
        def visit_ClassDef(self, node: ast.ClassDef) -> None:
            if node.name not in skip_classes:
                self.generic_visit(node)

        def visit_Name(self, node: ast.Name) -> None:
            if node.id == "print" and isinstance(node.ctx, ast.Load):
                found.append((node.lineno, "print"))

        def visit_Attribute(self, node: ast.Attribute) -> None:
            if isinstance(node.value, ast.Name) and node.value.id == "sys" and node.attr in STREAMS:
                found.append((node.lineno, f"sys.{node.attr}"))
            self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module == "sys":
                found.extend((node.lineno, f"from sys import {a.name}") for a in node.names if a.name in STREAMS)

    Finder().visit(ast.parse(source))
    return found


def test_console_writes_are_found():
    source = """import sys
from sys import stderr
def f(say=print):
    print("x")
    sys.stdout.write("y")
    print("z", file=sys.__stderr__)
class Bar:
    def g(self):
        print("inside")
"""
    assert console_writes(source) == [(2, "from sys import stderr"), (3, "print"), (4, "print"),
                                      (5, "sys.stdout"), (6, "print"), (6, "sys.__stderr__"), (9, "print")]
    assert console_writes(source, {"Bar"})[-1] == (6, "sys.__stderr__")
    assert console_writes("import logging\nlogging.getLogger(__name__).warning('w')\nsys.argv\n") == []


def test_only_the_cli_writes_to_the_console():
    offenders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        if CONSOLE_OWNER in path.parents:
            continue
        rel = path.relative_to(LIBRARY).as_posix()
        skip = {cls for file, cls in ALLOWED if file == rel}
        offenders += [f"src/nnrecipe/{rel}:{line}: {what}" for line, what in console_writes(path.read_text(), skip)]
    assert not offenders, ("the library writes to the console; return data, or log it "
                           "(logging.getLogger(__name__)) and let cli/ print it:\n" + "\n".join(offenders))
    for file, cls in ALLOWED:  # an exception that no longer exists must not linger
        tree = ast.parse((LIBRARY / file).read_text())
        assert any(isinstance(n, ast.ClassDef) and n.name == cls for n in ast.walk(tree)), (file, cls)


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
