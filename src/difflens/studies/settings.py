"""A study's settings: one frozen dataclass with quick / default / full presets.

Each study declares its settings as a subclass of :class:`StudySettings` whose
fields are made with :func:`setting` (default, help text, unit, bounds). The
class's ``PRESETS`` map ``"quick"`` and ``"full"`` to the fields they change;
the field defaults are the ``"default"`` preset. The command line's
``--set KEY=VALUE`` goes through :meth:`StudySettings.with_strings`, which
rejects unknown keys (listing the valid ones) and ill-typed or out-of-range
values with a one-line :class:`SettingsError`.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo(StudySettings):
...     PRESETS = {"quick": {"steps": 10}}
...     steps: int = setting(100, "optimisation steps", minimum=1)
>>> Demo.preset("quick").steps
10
>>> Demo().with_strings({"steps": "7"}).steps
7
>>> Demo().with_strings({"step": "7"})
Traceback (most recent call last):
...
difflens.studies.settings.SettingsError: unknown setting 'step'; valid settings: steps
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

__all__ = ["StudySettings", "setting", "SettingsError", "PRESET_NAMES"]

PRESET_NAMES = ("quick", "default", "full")


class SettingsError(ValueError):
    """A setting is unknown, of the wrong type, or out of range."""


def setting(default: Any, help: str, *, unit: str = "", minimum: float | None = None,
            maximum: float | None = None, choices: tuple[Any, ...] | None = None) -> Any:
    """A settings field: ``default`` plus what ``--help`` shows and what is checked.

    Parameters
    ----------
    default : Any
        The default preset's value (tuples for sequences).
    help : str
        One line for ``difflens run STUDY --help``.
    unit : str
        Shown after the default (``"s"``, ``"Lyapunov times"``, ...).
    minimum, maximum : float, optional
        Inclusive bounds, checked on every value (each element of a tuple).
    choices : tuple, optional
        The allowed values.
    """
    meta = {"help": help, "unit": unit, "minimum": minimum, "maximum": maximum, "choices": choices}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class StudySettings:
    """Base class of every study's settings (a frozen dataclass; see the module docstring)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check(f, hints[f.name], getattr(self, f.name))

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str = "default") -> "StudySettings":
        """The settings of preset ``name`` (``"quick"``, ``"default"`` or ``"full"``)."""
        if name not in PRESET_NAMES:
            raise SettingsError(f"unknown preset {name!r}; presets: {', '.join(PRESET_NAMES)}")
        return cls(**cls.PRESETS.get(name, {}))

    def replace(self, **changes: Any) -> "StudySettings":
        """A copy with ``changes`` (typed values), checked like any settings."""
        cls = type(self)
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]!r}; valid settings: {', '.join(cls.names())}")
        return dataclasses.replace(self, **changes)

    def with_strings(self, options: Mapping[str, str]) -> "StudySettings":
        """A copy with ``KEY=VALUE`` strings from the command line parsed by each field's type."""
        cls = type(self)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        changes = {}
        for key, text in options.items():
            if key not in fields:
                raise SettingsError(f"unknown setting {key!r}; valid settings: {', '.join(cls.names())}")
            changes[key] = _parse(key, text, hints[key])
        return self.replace(**changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists) for ``metrics.json``."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "StudySettings":
        """Rebuild from :meth:`to_dict` output (lists back to tuples)."""
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]!r}; valid settings: {', '.join(cls.names())}")
        return cls(**{k: tuple(v) if _is_tuple(hints[k]) and isinstance(v, list) else v for k, v in values.items()})

    @classmethod
    def names(cls) -> list[str]:
        """The settings' names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def describe(cls) -> str:
        """The settings table ``difflens run STUDY --help`` prints."""
        hints = typing.get_type_hints(cls)
        quick, full = cls.preset("quick"), cls.preset("full")
        default = cls()
        lines = ["settings (--set KEY=VALUE; presets: default, --quick, --full):"]
        for f in dataclasses.fields(cls):
            m = f.metadata
            unit = f" {m['unit']}" if m.get("unit") else ""
            presets = f"default {_show(getattr(default, f.name))}{unit}"
            for label, obj in (("quick", quick), ("full", full)):
                if getattr(obj, f.name) != getattr(default, f.name):
                    presets += f", {label} {_show(getattr(obj, f.name))}"
            bounds = _bounds(m)
            lines.append(f"  {f.name} ({_type_name(hints[f.name])}{bounds}): {m.get('help', '')} [{presets}]")
        return "\n".join(lines)


# ---------------------------------------------------------------------- parsing
def _is_optional(tp: Any) -> tuple[bool, Any]:
    args = typing.get_args(tp)
    if (typing.get_origin(tp) in (typing.Union, types.UnionType)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0]
    return False, tp


def _is_tuple(tp: Any) -> bool:
    return typing.get_origin(_is_optional(tp)[1]) is tuple


def _parse(key: str, text: str, tp: Any) -> Any:
    optional, inner = _is_optional(tp)
    text = text.strip()
    if optional and text.lower() in ("none", ""):
        return None
    if typing.get_origin(inner) is tuple:
        elem = typing.get_args(inner)[0]
        parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
        return tuple(_parse_scalar(key, p.strip(), elem) for p in parts)
    return _parse_scalar(key, text, inner)


def _parse_scalar(key: str, text: str, tp: Any) -> Any:
    try:
        if tp is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        return str(text)
    except ValueError:
        raise SettingsError(f"setting {key}={text!r} is not a valid {_type_name(tp)}") from None


def _check(f: dataclasses.Field, tp: Any, value: Any) -> None:
    optional, inner = _is_optional(tp)
    if value is None:
        if not optional:
            raise SettingsError(f"setting {f.name} cannot be None")
        return
    values = value if typing.get_origin(inner) is tuple else (value,)
    elem = typing.get_args(inner)[0] if typing.get_origin(inner) is tuple else inner
    if typing.get_origin(inner) is tuple and not isinstance(value, tuple):
        raise SettingsError(f"setting {f.name} must be a tuple of {_type_name(elem)}, got {value!r}")
    m = f.metadata
    for v in values:
        ok = (isinstance(v, bool) if elem is bool else
              isinstance(v, int) and not isinstance(v, bool) if elem is int else
              isinstance(v, (int, float)) and not isinstance(v, bool) if elem is float else
              isinstance(v, str))
        if not ok:
            raise SettingsError(f"setting {f.name} must be {_type_name(elem)}, got {v!r}")
        if elem is float and not math.isfinite(v):
            raise SettingsError(f"setting {f.name} must be finite, got {v!r}")
        if m.get("choices") is not None and v not in m["choices"]:
            raise SettingsError(f"setting {f.name}={v!r} is not one of {', '.join(map(str, m['choices']))}")
        if m.get("minimum") is not None and v < m["minimum"]:
            raise SettingsError(f"setting {f.name}={v!r} is below its minimum {m['minimum']:g}")
        if m.get("maximum") is not None and v > m["maximum"]:
            raise SettingsError(f"setting {f.name}={v!r} is above its maximum {m['maximum']:g}")


def _type_name(tp: Any) -> str:
    optional, inner = _is_optional(tp)
    if typing.get_origin(inner) is tuple:
        name = f"comma-separated {typing.get_args(inner)[0].__name__}s"
    else:
        name = {int: "integer", float: "number", bool: "true/false", str: "text"}.get(inner, str(inner))
    return name + (" or none" if optional else "")


def _bounds(m: Mapping[str, Any]) -> str:
    if m.get("choices") is not None:
        return ": " + "|".join(map(str, m["choices"]))
    lo, hi = m.get("minimum"), m.get("maximum")
    if lo is not None and hi is not None:
        return f", {lo:g}..{hi:g}"
    if lo is not None:
        return f", >= {lo:g}"
    if hi is not None:
        return f", <= {hi:g}"
    return ""


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
