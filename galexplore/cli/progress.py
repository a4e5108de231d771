"""The CLI's progress: tqdm bars on stderr, one at a time, and lines printed above them.

On a terminal a bar is redrawn in place; in a log file it is written at most every 10 s. A bar
opens when its work begins, so a command refused before that prints its error line alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any


class Bars:
    """The progress of one command: `stage` for a build's stages, `counter` for a count that a
    library reports as it goes (galaxies simulated, training steps), `line` for a message."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def open(self, desc: str, total: int | None, unit: str) -> Any:
        """A new bar of `total` units (None: a count without an end), closing the one before."""
        from tqdm import tqdm

        self.close()
        self._bar = tqdm(total=total or None, desc=desc, unit=unit, unit_scale=True, file=sys.stderr,
                         dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10)
        return self._bar

    def stage(self, stage: str, total: int) -> Callable[[int], None]:
        """A build stage's bar: its update(done increment) (`galexplore.pipeline.build`'s progress)."""
        return self.open(f"{stage:<9}", total, "step" if stage == "train" else "galaxy").update

    def counter(self, desc: str, unit: str) -> Callable[..., None]:
        """advance(done, total=None, note=""): the bar `desc` moved to `done` (of `total`), with
        `note` beside it; opened on the first call."""
        def advance(done: int, total: int | None = None, note: str = "") -> None:
            if self._bar is None:
                self.open(desc, total, unit)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(done - self._bar.n)

        return advance

    def line(self, text: str) -> None:
        """A message on its own line, above the bar."""
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
