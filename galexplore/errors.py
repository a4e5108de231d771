"""The errors a user can cause, each carrying one clear message.

The CLI prints a `GalexploreError` as one line and exits non-zero without a traceback; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GalexploreError(Exception):
    """A problem with the user's input: a file, a key, a value. The message says which and why."""


class ConfigError(GalexploreError):
    """A configuration file has an unknown key, a wrong type or an out-of-range value."""


class SurveyError(GalexploreError):
    """A survey's images or catalog cannot be read or fail validation."""


class AtlasError(GalexploreError):
    """An atlas folder is missing, inconsistent, foreign or cannot hold what was asked of it."""


def reason(exc: BaseException, limit: int = 300) -> str:
    """A library's exception message as one line of at most `limit` characters, to quote in a
    `GalexploreError` (pyarrow's and numpy's can span several lines).

    >>> reason(ValueError("Couldn't deserialize thrift\\nDeserializing page header failed."))
    "Couldn't deserialize thrift Deserializing page header failed."
    """
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
