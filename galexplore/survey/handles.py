"""An open file that every process opens for itself.

HDF5 and FITS handles must not cross a fork and cannot be pickled for a spawned DataLoader
worker; a `ProcessLocalFile` reopens the file the first time a new process asks for it and
travels between processes as its opener alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from galexplore.errors import SurveyError

Handle = TypeVar("Handle")


class ProcessLocalFile(Generic[Handle]):
    """`opener()`'s handle, opened once per process; `kind` names the format in error messages.

    `opener` must be picklable (a module-level function or a functools.partial of one).
    """

    def __init__(self, opener: Callable[[], Handle], kind: str, source: str) -> None:
        self.opener, self.kind, self.source = opener, kind, source
        self._handle: Handle | None = None
        self._pid = -1

    def get(self) -> Handle:
        if self._handle is None or self._pid != os.getpid():
            try:
                self._handle = self.opener()
            except FileNotFoundError:
                raise SurveyError(f"{self.source}: file not found") from None
            except OSError as exc:
                raise SurveyError(f"{self.source}: not a readable {self.kind} file ({exc})") from None
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        """Close this process's handle (a handle inherited from another process is left alone)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()  # type: ignore[attr-defined]
        self._handle = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_pid": -1}
