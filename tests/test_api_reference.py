"""The API reference covers every subpackage (a cheap check on the sources; .ci/run builds the site).

A new subpackage ``difflens.NAME`` needs ``docs/api/NAME.md`` holding ``::: difflens.NAME`` and a
nav line ``api/NAME.md`` in ``mkdocs.yml``; every guide in ``docs/`` is in the nav too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "difflens"
DOCS = ROOT / "docs"
CONFIG = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def _directives() -> dict[str, Path]:
    """``{documented module: page}`` for every ``::: module`` line under docs/api."""
    found = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)  # not in code
        for module in re.findall(r"^::: (difflens[\w.]*)\s*$", text, flags=re.M):
            found.setdefault(module, page)
    return found


def test_every_subpackage_has_a_page_in_the_nav():
    directives = _directives()
    public = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")) + ["cli"]
    missing = [name for name in public if f"difflens.{name}" not in directives]
    assert not missing, f"no docs/api page with '::: difflens.NAME' for: {missing}"
    for name in public:
        page = directives[f"difflens.{name}"].relative_to(DOCS).as_posix()
        assert re.search(rf":\s*{re.escape(page)}\s*$", CONFIG, flags=re.M), f"{page} is not in mkdocs.yml's nav"


def test_every_directive_names_an_existing_module():
    for module, page in _directives().items():
        path = PACKAGE.parent.joinpath(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), (
            f"{page.relative_to(ROOT)}: '::: {module}' names no module in src/"
        )


def test_every_guide_is_in_the_nav():
    guides = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    missing = [g for g in guides if not re.search(rf":\s*{re.escape(g)}\s*$|^\s*-\s*{re.escape(g)}\s*$", CONFIG,
                                                  flags=re.M)]
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"
