"""The two admin files the ``hadoop`` workload edits, each the way Hadoop reads it.

* The NameNode's combined hosts file (``dfs.hosts`` with
  ``dfs.namenode.hosts.provider.classname`` = ``CombinedHostFileManager``): a JSON array of
  objects ``{"hostName", "port", "upgradeDomain", "adminState", "maintenanceExpireTimeInMS"}``;
  ``adminState`` defaults to ``NORMAL``. The same file is the include list: when at least one
  entry is ``NORMAL``, only hosts with an entry may register; when none is, every host may.
* The ResourceManager's exclude file (``yarn.resourcemanager.nodes.exclude-path``), plain-text
  format: host names separated by white space, one a line by convention, ``#`` starts a comment.

Both are rewritten atomically (temporary file in the same directory, then rename) and only
when something changed; entries of other hosts are left exactly as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ephyra.errors import StepFailed
from ephyra.workloads.hadoop_api import AdminState

EXPIRE_KEY = "maintenanceExpireTimeInMS"


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename, keeping its mode and (if we may) owner."""
    try:
        old = path.stat()
    except FileNotFoundError:
        old = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if old is not None:
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
            with contextlib.suppress(PermissionError):
                os.chown(tmp, old.st_uid, old.st_gid)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _same_host(entry: dict[str, Any], host: str) -> bool:
    return str(entry.get("hostName", "")).lower() == host.lower()


def entry_state(entry: dict[str, Any]) -> AdminState:
    name = entry.get("adminState", "NORMAL")
    try:
        return AdminState[str(name)]
    except KeyError:
        raise StepFailed(
            f"HDFS hosts file entry {entry.get('hostName')!r} has an unknown adminState "
            f"{name!r} (valid: {', '.join(a.name for a in AdminState)})"
        ) from None


class HostsFile:
    """The NameNode's combined (JSON) hosts file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StepFailed(f"cannot read the HDFS hosts file {self.path}: {exc}") from None
        try:
            entries = json.loads(text) if text.strip() else []
        except ValueError as exc:
            raise StepFailed(f"HDFS hosts file {self.path} is not valid JSON: {exc}") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise StepFailed(
                f"HDFS hosts file {self.path} is not a JSON array of objects "
                "(the dfs.hosts format of CombinedHostFileManager)"
            )
        return entries

    def state_of(self, host: str) -> AdminState | None:
        """What the file asks for ``host`` (None: it has no entry)."""
        mine = [e for e in self.read() if _same_host(e, host)]
        return entry_state(mine[0]) if mine else None

    def out_of_service_hosts(self) -> set[str]:
        """Hosts the file puts in maintenance or decommissions (lower case)."""
        return {
            str(e.get("hostName", "")).lower()
            for e in self.read()
            if entry_state(e) in (AdminState.IN_MAINTENANCE, AdminState.DECOMMISSIONED)
        }

    def set_state(self, host: str, state: AdminState, expire_ms: int | None = None) -> bool:
        """Ask for ``state`` for ``host``; True when the file changed."""
        entries = self.read()
        mine = [e for e in entries if _same_host(e, host)]
        others_in_service = any(
            entry_state(e) is AdminState.NORMAL for e in entries if not _same_host(e, host)
        )
        if state is AdminState.NORMAL:
            updated = self._back_to_normal(entries, host, others_in_service)
        elif not mine:
            updated = self._new_entry(entries, host, others_in_service, state, expire_ms)
        else:
            updated = [
                _with_state(e, state, expire_ms) if _same_host(e, host) else e for e in entries
            ]
        if updated == entries:
            return False
        try:
            atomic_write(self.path, json.dumps(updated, indent=2) + "\n")
        except OSError as exc:
            raise StepFailed(f"cannot write the HDFS hosts file {self.path}: {exc}") from None
        return True

    @staticmethod
    def _back_to_normal(
        entries: list[dict[str, Any]], host: str, others_in_service: bool
    ) -> list[dict[str, Any]]:
        mine = [e for e in entries if _same_host(e, host)]
        if all(entry_state(e) is AdminState.NORMAL for e in mine):
            return entries
        if not others_in_service:
            # No NORMAL entry means "every host may register". Writing one for this host
            # would turn the file into an include list of one and lock every other
            # DataNode out, so this host's entries go instead.
            return [e for e in entries if not _same_host(e, host)]
        return [_normal(e) if _same_host(e, host) else e for e in entries]

    def _new_entry(
        self,
        entries: list[dict[str, Any]],
        host: str,
        others_in_service: bool,
        state: AdminState,
        expire_ms: int | None,
    ) -> list[dict[str, Any]]:
        if others_in_service:
            raise StepFailed(
                f"{host} has no entry in the HDFS hosts file {self.path}, which lists "
                "hosts as NORMAL and so is an include list: this host cannot be a "
                "registered DataNode (check the host name, or option host_from)"
            )
        return [*entries, _with_state({"hostName": host}, state, expire_ms)]


def _normal(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("adminState", EXPIRE_KEY)}


def _with_state(entry: dict[str, Any], state: AdminState, expire_ms: int | None) -> dict[str, Any]:
    updated = {**_normal(entry), "adminState": state.name}
    if state is AdminState.IN_MAINTENANCE and expire_ms is not None:
        updated[EXPIRE_KEY] = expire_ms
    return updated


class ExcludeFile:
    """The ResourceManager's plain-text exclude file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StepFailed(f"cannot read the YARN exclude file {self.path}: {exc}") from None

    @staticmethod
    def _split(line: str) -> tuple[list[str], str]:
        """Host names on ``line`` and its comment (from the first ``#`` word on)."""
        words = line.split()
        for index, word in enumerate(words):
            if word.startswith("#"):
                return words[:index], " ".join(words[index:])
        return words, ""

    def hosts(self) -> set[str]:
        return {word.lower() for line in self._lines() for word in self._split(line)[0]}

    def add(self, host: str) -> bool:
        if host.lower() in self.hosts():
            return False
        self._write([*self._lines(), host])
        return True

    def remove(self, host: str) -> bool:
        if host.lower() not in self.hosts():
            return False
        kept: list[str] = []
        for line in self._lines():
            words, comment = self._split(line)
            if not any(w.lower() == host.lower() for w in words):
                kept.append(line)
                continue
            rest = [w for w in words if w.lower() != host.lower()]
            if rest or comment:
                kept.append(" ".join([*rest, comment] if comment else rest))
        self._write(kept)
        return True

    def _write(self, lines: list[str]) -> None:
        try:
            atomic_write(self.path, "".join(f"{line}\n" for line in lines))
        except OSError as exc:
            raise StepFailed(f"cannot write the YARN exclude file {self.path}: {exc}") from None
