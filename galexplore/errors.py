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
