"""Checking one TOML table against its dataclass: unknown keys (with a "did you mean"), types
and ranges, each refused with a `ConfigError` that names the file, the key and the value."""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from typing import Any, Literal

from galexplore.errors import ConfigError

def build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    """Recursively turn a TOML table into the dataclass `cls`, validating each key."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, found {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise ConfigError(
            f"{source}: unknown key '{prefix}{key}'{hint}; known keys in [{where}]: "
            f"{', '.join(fields)}"
        )
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = build(hint, value, source, prefix=f"{key}.")
        else:
            values[name] = check_value(hint, value, source, key, fields[name].metadata)
    return cls(**values)


def type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    if origin is dict:
        return "a table of strings"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[hint]


def check_value(hint: Any, value: Any, source: str, key: str, meta: Any) -> Any:
    """Check one value against its type hint and range; return it in the field's type."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key} = {value!r}: expected {expected}")

    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise bad(type_name(hint))
        return value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise bad(type_name(hint))
        return tuple(check_value(item, v, source, f"{key}[{i}]", {}) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad(type_name(hint))
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad(type_name(hint))
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(type_name(hint))
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a finite number")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise bad(type_name(hint))
        return value
    ge, le, gt = (meta.get("ge"), meta.get("le"), meta.get("gt")) if meta else (None, None, None)
    if (ge is not None and value < ge) or (le is not None and value > le) or (gt is not None and value <= gt):
        parts = [f">= {ge}" if ge is not None else "", f"> {gt}" if gt is not None else "",
                 f"<= {le}" if le is not None else ""]
        why = f" ({meta['why']})" if le is not None and value > le and meta.get("why") else ""
        raise bad("a value " + " and ".join(p for p in parts if p) + why)
    return value
