"""Where Ephyra keeps its state on this machine, readable by its owner only.

The state directory (``$XDG_STATE_HOME/ephyra``, else ``~/.local/state/ephyra``) holds the
journal (upgrade specs, node snapshots), the versions store, the locks, the API's tokens
and the agent's logs: it is made ``0700`` and its files ``0600``. A directory found with
wider bits is tightened, and that is said once (a warning on the log, which the command
line shows on stderr).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

from ephyra.errors import UsageError

LOG = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
#: What SQLite writes beside a database file (write-ahead log, shared memory, journal).
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

_told: set[Path] = set()


def state_dir() -> Path:
    """Ephyra's state directory (``$XDG_STATE_HOME/ephyra``, else ``~/.local/state/ephyra``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ephyra"


def _tighten(path: Path, mode: int) -> None:
    """``path`` with no bit beyond ``mode``; said once per path and process."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode == 0:
        return
    os.chmod(path, current & mode)
    if path not in _told:
        _told.add(path)
        LOG.warning("%s was mode %04o, readable by others: now %04o", path, current, current & mode)


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """``path``, a directory made ``0700`` (its missing parents too); an existing one with
    wider bits is tightened unless ``tighten`` is false (a directory an operator chose)."""
    if in_state_dir(path) and path.absolute() != state_dir().absolute():
        private_dir(state_dir())  # made first, so it is never made with wider bits
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask
    elif tighten:
        _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path``, a file readable and writable by its owner only: made empty and ``0600``
    if missing (never open to others, not even for a moment), tightened if wider."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
    else:
        os.close(fd)
    return path


def owner_only(path: Path, what: str) -> None:
    """A configuration file that may hold secrets (or name commands to run): its owner's
    only. One in the state directory is tightened to ``0600``; one elsewhere that others
    may read or write is refused."""
    if in_state_dir(path):
        private_file(path)
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UsageError(
            f"{what} {path} is mode {mode:04o}, readable by others: it must be its owner's "
            f"only (chmod 600 {path})"
        )


def in_state_dir(path: Path) -> bool:
    """Whether ``path`` is the state directory or under it."""
    return path.absolute().is_relative_to(state_dir().absolute())


def private_database(path: Path) -> Path:
    """A SQLite file ``0600`` (SQLite makes its side files with the database's mode; any
    already there are tightened), in a directory made ``0700``; the state directory and
    those under it are tightened, a directory an operator chose is left as it is."""
    private_dir(path.parent, tighten=in_state_dir(path.parent))
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):  # the last connection to close removes it
            _tighten(side, FILE_MODE)
    return path


def write_ahead(db: Any, timeout: float) -> None:
    """A SQLite connection (or cursor) ``db`` in WAL mode. While another connection
    switches the file to it, SQLite answers "locked" at once, without waiting for its busy
    timeout: asked again for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # sqlite3's, or a driver's wrapping it
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for another URL or an in-memory one)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///:memory:", "sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///").partition("?")[0])
