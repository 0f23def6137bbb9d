"""Lazy attribute maps for package ``__init__`` files (PEP 562)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` resolving ``name`` to ``package.exports[name].name``.

    ``exports`` maps a public name to the submodule (relative to ``package``)
    that defines it; a value starting with ``"."`` and equal to ``"." + name``
    imports the submodule itself. Resolved values are cached in ``namespace``.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = exports[name]
        module = importlib.import_module(f"{package}.{target.lstrip('.')}")
        value = module if target == f".{name}" else getattr(module, name)
        namespace[name] = value
        return value

    return __getattr__
