"""Griffe extension: a package's ``_EXPORTS`` map counts as its ``__all__`` in the API reference.

difflens's packages export names lazily (``difflens.tools.lazy.lazy_exports``) and
write ``__all__ = sorted(_EXPORTS)``, which static analysis cannot evaluate. This
extension reads the ``_EXPORTS`` dict literal (and any literal ``__all__`` items) from the
module's source and sets the module's exports, so mkdocstrings renders every exported
name from the ``if TYPE_CHECKING:`` imports that each such package carries.
Loaded by ``mkdocs.yml`` (plugins > mkdocstrings > handlers > python > options > extensions).
"""

from __future__ import annotations

import ast
from typing import Any

import griffe


def _literal_names(node: ast.expr) -> list[str]:
    """Names in a literal list/tuple/dict of strings; starred dict names expand to their keys."""
    if isinstance(node, ast.Dict):
        return [ast.literal_eval(key) for key in node.keys if key is not None]
    if isinstance(node, (ast.List, ast.Tuple)):
        names = []
        for item in node.elts:
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                names.append(item.value)
        return names
    return []


class LazyExports(griffe.Extension):
    """Set ``module.exports`` from ``_EXPORTS`` (plus literal ``__all__`` items) when present."""

    def on_module_members(self, *, node: ast.AST | griffe.ObjectNode, mod: griffe.Module,
                          agent: griffe.Visitor | griffe.Inspector, **kwargs: Any) -> None:
        if not isinstance(node, ast.Module):
            return
        lazy: list[str] | None = None
        listed: list[str] = []
        for statement in node.body:
            if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
                continue
            target = statement.targets[0]
            if isinstance(target, ast.Name) and target.id == "_EXPORTS":
                lazy = _literal_names(statement.value)
            elif isinstance(target, ast.Name) and target.id == "__all__":
                listed = _literal_names(statement.value)
        if lazy is None:
            return
        mod.exports = list(dict.fromkeys([*listed, *lazy]))
