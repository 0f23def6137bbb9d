"""Type checkers (and the API reference) see every exported name, lazy ones included.

Packages that export lazily (``difflens.tools.lazy.lazy_exports``) repeat each name of
their ``_EXPORTS`` map under ``if TYPE_CHECKING:`` as ``from .module import name as name``
(the explicit re-export form that pyright and ``mypy --no-implicit-reexport`` accept).
The first tests check that on the source; the last runs mypy on a snippet importing every
exported name of every package and asserts that none is unresolved or ``Any``.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "difflens"


def _literal(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def _type_checking_imports(tree: ast.Module) -> dict[str, tuple[str, str]]:
    """``{bound name: (relative module, imported name)}`` for imports under ``if TYPE_CHECKING:``."""
    found: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    module = "." * statement.level + (statement.module or "")
                    for alias in statement.names:
                        if alias.asname == alias.name:  # the explicit re-export form only
                            found[alias.name] = (module, alias.name)
    return found


LAZY_INITS = sorted(p for p in PACKAGE.rglob("__init__.py") if "lazy_exports" in p.read_text(encoding="utf-8"))


def test_the_lazy_packages_are_found():
    names = {p.parent.name for p in LAZY_INITS}
    assert {"synthesize", "dynamics", "assim", "control", "data", "draw", "plot", "tools"} <= names


@pytest.mark.parametrize("init", LAZY_INITS, ids=lambda p: p.parent.name)
def test_every_lazy_export_is_imported_for_type_checkers(init: Path):
    tree = ast.parse(init.read_text(encoding="utf-8"))
    exports = _literal(tree, "_EXPORTS")
    assert isinstance(exports, dict) and exports, f"{init}: no literal _EXPORTS dict"
    seen = _type_checking_imports(tree)
    problems = []
    for name, target in exports.items():
        if target == f".{name}":  # the submodule itself
            expected = (".", name)
        else:
            expected = ("." + target.lstrip("."), name)
        if seen.get(name) != expected:
            problems.append(f"{name}: want 'from {expected[0]} import {name} as {name}', got {seen.get(name)}")
    assert not problems, f"{init.relative_to(SRC)} under TYPE_CHECKING:\n" + "\n".join(problems)


def test_the_top_level_lazy_names_are_imported_for_type_checkers():
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    seen = _type_checking_imports(tree)
    wanted = set(_literal(tree, "_SUBPACKAGES")) | set(_literal(tree, "_SHORTCUTS"))
    assert wanted <= set(seen), f"missing under TYPE_CHECKING: {sorted(wanted - set(seen))}"


def test_the_package_ships_py_typed():
    assert (PACKAGE / "py.typed").is_file()
    pyproject = (SRC.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'difflens = \[[^\]]*"py\.typed"', pyproject), "py.typed is not in package-data"


# every package with an __all__ (a new subpackage is checked as soon as it exists)
PACKAGES = sorted(".".join(p.parent.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("__init__.py")
                  if p.parent != PACKAGE and "__all__" in p.read_text(encoding="utf-8"))


def _snippet() -> tuple[str, list[str]]:
    lines, names = ["import difflens"], []
    for package in PACKAGES:
        module = importlib.import_module(f"difflens.{package}")
        for i, name in enumerate(module.__all__):
            alias = f"{package.replace('.', '_')}_{i}"
            lines.append(f"from difflens.{package} import {name} as {alias}")
            lines.append(f"reveal_type({alias})")
            names.append(f"difflens.{package}.{name}")
    for name in importlib.import_module("difflens").__all__:
        lines.append(f"reveal_type(difflens.{name})")
        names.append(f"difflens.{name}")
    return "\n".join(lines) + "\n", names


def test_mypy_resolves_every_exported_name(tmp_path: Path):
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    snippet, names = _snippet()
    (tmp_path / "snippet.py").write_text(snippet)
    # difflens is analysed (errors inside it silenced); its heavy dependencies are skipped as Any,
    # which keeps a cold run near 10 s.
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nfollow_imports = silent\nignore_missing_imports = True\nno_implicit_reexport = True\n"
        "[mypy-torch.*,numpy.*,scipy.*,matplotlib.*,PIL.*,tqdm.*,sklearn.*,ray.*]\nfollow_imports = skip\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", "snippet.py"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "MYPYPATH": str(SRC)}, timeout=300,
    )
    reveals = re.findall(r'^snippet\.py:\d+: note: Revealed type is "(.*)"$', result.stdout, flags=re.M)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not errors, "mypy cannot resolve exported names:\n" + "\n".join(errors[:20])
    assert len(reveals) == len(names), result.stdout[-2000:] + result.stderr[-2000:]
    unresolved = [name for name, revealed in zip(names, reveals) if revealed == "Any"]
    assert not unresolved, f"type checkers see these exported names as Any: {unresolved}"
