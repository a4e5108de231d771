"""Reading a config: TOML text from a file (or a parsed mapping), checked key by key and then
across keys, into a frozen `Config`."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from galexplore.config.checks import check_config
from galexplore.config.fields import build
from galexplore.config.schema import Config
from galexplore.errors import ConfigError
from galexplore.io import check_regular_file


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config. Raises `ConfigError` naming the file, key and value."""
    path = Path(path)
    check_regular_file(path, "a TOML config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a TOML config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(f"{path}: not a usable config: arrays or tables nested too deeply "
                          f"(a config nests at most a few levels)") from None
    cfg = config_from_dict(raw, source=str(path))
    return dataclasses.replace(cfg, base_dir=str(path.resolve().parent))


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Build a `Config` from a parsed TOML mapping, checking every key."""
    cfg = build(Config, raw, source, prefix="")
    check_config(cfg, source)
    return cfg
