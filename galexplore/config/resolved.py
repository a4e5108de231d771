"""The resolved config: a `Config` written back as TOML, every default spelled out and its paths
absolute, saved beside every output so that the file reruns the same run from anywhere."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any

from galexplore.config.schema import Config
from galexplore.io import atomic_write_text

def to_toml(cfg: Any) -> str:
    """Write a config dataclass back as TOML (the resolved config saved beside every output)."""
    top, tables = [], []
    for f in dataclasses.fields(cfg):
        if f.metadata.get("internal"):
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            body = "\n".join(
                f"{g.name} = {_toml_value(getattr(value, g.name))}" for g in dataclasses.fields(value)
            )
            tables.append(f"[{f.name}]\n{body}\n")
        else:
            top.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(top) + "\n\n" + "\n".join(tables)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if _toml_control(c) else c) for c in value) + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, (dict, types.MappingProxyType)):
        return "{" + ", ".join(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_control(c: str) -> bool:
    """A character a TOML basic string must escape (control characters and DEL).

    >>> import tomllib
    >>> tomllib.loads("x = " + _toml_value("a\\nb\\x7f\\"c")) == {"x": "a\\nb\\x7f\\"c"}
    True
    """
    return ord(c) < 0x20 or ord(c) == 0x7F


def write_resolved(cfg: Config, folder: str | Path) -> Path:
    """Write the resolved config as `config.toml` in `folder` (atomically) and return its path.

    Every default is spelled out and relative paths are made absolute, so the file reruns the
    same run from wherever it is read.
    """
    return atomic_write_text(Path(folder) / "config.toml", to_toml(absolute_paths(cfg)))


def absolute_paths(cfg: Config) -> Config:
    """`cfg` with its survey paths made absolute against the config file's folder."""
    survey = dataclasses.replace(
        cfg.survey,
        path=str(cfg.resolve(cfg.survey.path)) if cfg.survey.path else "",
        catalog=str(cfg.resolve(cfg.survey.catalog)) if cfg.survey.catalog else "",
    )
    return dataclasses.replace(cfg, survey=survey)
