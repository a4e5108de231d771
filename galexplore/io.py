"""Atomic file writes: write to a temporary name in the same folder, then rename into place.

A reader never sees a half-written file under the final name, whatever kills the writer.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from galexplore.errors import GalexploreError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`, else removed.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "x.txt").read_text()
    'done'
    """
    path = Path(path)
    # a folder in the way is refused now, before anything is written, not at the rename
    if path.is_dir():
        raise GalexploreError(f"{path}: is a folder; expected the name of a file to write")
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the mode an ordinary new file would get,
    # so colleagues can read a shared survey or atlas.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def remove_partials(folder: str | Path, name: str = "*") -> None:
    """Delete the temporaries that `atomic_path` leaves in `folder` when its writer is killed
    (SIGKILL runs no cleanup), for files called `name` (a glob; default every file).

    Call it only where no other process may be writing those names at the same moment.
    """
    for tmp in Path(folder).glob(f".{name}.*.partial"):
        tmp.unlink(missing_ok=True)


def make_folder(folder: str | Path) -> Path:
    """Create `folder` (and its parents) unless it exists; a file in the way is a `GalexploreError`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise GalexploreError(
            f"{folder}: not a folder (a file of that name exists); expected a folder to write in"
        ) from None
    return folder


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically and return `path`."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


#: what a path that is neither a regular file nor a folder is, by its stat mode
_SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def special_file(path: str | Path) -> str | None:
    """What `path` is when it exists but is neither a regular file nor a folder ("a FIFO (named
    pipe)", ...), else None. Opening a FIFO to read waits for a writer forever: readers check
    this first and refuse such a path.

    >>> special_file("/dev/null")
    'a character device'
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing, or unreadable: the reader's own error says so
    return next((what for test, what in _SPECIAL_FILES if test(mode)), None)


def check_regular_file(path: str | Path, expected: str, error: type[GalexploreError] = GalexploreError,
                       where: str | None = None) -> None:
    """Raise `error` when `path` is a FIFO, socket or device rather than a file; the message
    names `where` (default: the path) and the `expected` file."""
    what = special_file(path)
    if what is not None:
        raise error(f"{where or path}: is {what}, not a regular file; expected {expected}")
