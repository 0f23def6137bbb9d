"""The layering rules of docs/architecture.md, checked on the source (imports inside functions count)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "difflens"
CAPABILITIES = ("engine", "tools", "simulate", "metric", "synthesize", "dynamics", "gp", "draw", "data")
ABOVE = {"plot", "studies", "cli", "plenoptic_names"}


def _imports(path: Path):
    """(line, absolute module name, imported names) for every import in the file."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + "." + "__init__"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: -node.level]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module, [a.name for a in node.names]


def test_capabilities_never_import_plotting_studies_or_the_cli():
    bad = []
    for layer in CAPABILITIES:
        for path in (SRC / layer).rglob("*.py"):
            for line, module, names in _imports(path):
                parts = module.split(".")
                targets = {parts[1]} if len(parts) > 1 and parts[0] == "difflens" else set()
                if module == "difflens":
                    targets = set(names)
                if targets & ABOVE:
                    bad.append(f"{path.relative_to(SRC)}:{line} imports {module} {names}")
    assert not bad, "back edges:\n" + "\n".join(bad)


def test_plotting_never_imports_studies():
    bad = [f"{p.relative_to(SRC)}:{line}" for p in (SRC / "plot").rglob("*.py")
           for line, module, _ in _imports(p) if module.startswith(("difflens.studies", "difflens.cli"))]
    assert not bad, bad


def test_no_private_name_is_imported_across_modules():
    bad = []
    for path in SRC.rglob("*.py"):
        for line, module, names in _imports(path):
            if not module.startswith("difflens"):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            hidden = [p for p in module.split(".") if p.startswith("_") and p != "__init__"]
            if private or hidden:
                bad.append(f"{path.relative_to(SRC)}:{line} from {module} import {names}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)
