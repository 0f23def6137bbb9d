"""Griffe extensions for the API reference (loaded by ``mkdocs.yml``).

:class:`LazyExports`: a package's ``_EXPORTS`` map counts as its ``__all__``. difflens's packages export names lazily (``difflens.tools.lazy.lazy_exports``) and
write ``__all__ = sorted(_EXPORTS)``, which static analysis cannot evaluate. This
extension reads the ``_EXPORTS`` dict literal (and any literal ``__all__`` items) from the
module's source and sets the module's exports, so mkdocstrings renders every exported
name from the ``if TYPE_CHECKING:`` imports that each such package carries.

:class:`InheritDocstrings`: a method without a docstring that overrides a documented method of
a difflens base class (``StopRule.check``, ``Environment.step``, ``nn.Module``-style protocols
within difflens) shows the base's docstring, as ``help()`` does.

:class:`JoinSummary`: a summary that wraps over several lines is joined into one, so the summary
tables (which show a docstring's first line) show the whole sentence.

:class:`SphinxRoles`: the docstrings' Sphinx roles (``:class:`Metamer```, ``:func:`~difflens.x.f```)
become links to the referenced object's entry when that object is in the reference, and code
otherwise (an optional autorefs reference never fails the strict build).
"""

from __future__ import annotations

import ast
import html
import re
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


class InheritDocstrings(griffe.Extension):
    """Give an undocumented method the docstring of the nearest documented same-named base method."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        for member in obj.members.values():
            if member.is_alias:
                continue
            if member.is_module or member.is_class:
                self._visit(member)
        if not obj.is_class:
            return
        try:
            bases = obj.mro()
        except (griffe.AliasResolutionError, griffe.CyclicAliasError, ValueError):
            return
        for name, member in obj.members.items():
            if member.is_alias or member.docstring or not (member.is_function or member.is_attribute):
                continue
            for base in bases:
                inherited = base.members.get(name)
                if inherited is not None and not inherited.is_alias and inherited.docstring:
                    member.docstring = griffe.Docstring(inherited.docstring.value, lineno=None,
                                                        parent=member)
                    break


_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|obj|exc|data|const):`(?P<target>[^`<>]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in docstrings as an optional autorefs link to ``target``'s entry."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._visit(pkg, pkg)

    def _visit(self, obj: griffe.Object, pkg: griffe.Module) -> None:
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(lambda match: self._link(obj, pkg, match["target"]),
                                            obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._visit(member, pkg)

    @staticmethod
    def _link(obj: griffe.Object, pkg: griffe.Module, target: str) -> str:
        shown = target.lstrip("~.")
        if target.startswith("~"):
            shown = shown.rsplit(".", 1)[-1]
        path = _resolve(obj, pkg, target.lstrip("~."))
        code = f"<code>{html.escape(shown)}</code>"
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


def _resolve(obj: griffe.Object, pkg: griffe.Module, dotted: str) -> str | None:
    """The canonical path of ``dotted`` seen from ``obj`` (absolute, or by Python's scoping), or None."""
    head, _, rest = dotted.partition(".")
    candidates = [dotted] if head == pkg.name else []
    try:
        candidates.append(obj.resolve(head) + (f".{rest}" if rest else ""))
    except (griffe.NameResolutionError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        pass
    for path in candidates:
        try:
            found = pkg.modules_collection.get_member(path)
            return found.canonical_path if found.is_alias else found.path
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
    return None


_NOT_PROSE = re.compile(r"\s*([-*+] |\d+\. |>>>|\.\. |\||```)")


class JoinSummary(griffe.Extension):
    """Join the lines of a docstring's first paragraph (prose only: no list, table or example)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            value = obj.docstring.value
            first, sep, rest = value.partition("\n\n")
            lines = first.split("\n")
            if len(lines) > 1 and not any(_NOT_PROSE.match(line) for line in lines):
                obj.docstring.value = " ".join(line.strip() for line in lines) + sep + rest
        for member in obj.members.values():
            if not member.is_alias:
                self._visit(member)
