"""Where each fact stands in the store: seed 003's key hierarchy, under a prefix.

::

    /current_version                            the version every host should run
    /history/<ns since epoch>                   each trigger: version, previous, by, at, rules
    /rollout/<version>                          the rolling rules of that version (JSON)
    /rollout/<version>/slots/<role>/<host>      a queue: the first max_at_once hold the slots
    /rollout/<version>/updating/<host>          the host is updating to it now (lease)
    /running_version/<version>/<host>           the host runs it (lease: a dead host drops out)
    /status/<stage>/<result>/<version>/<host>   lifecycle; JSON with a message and a log link
    /state/<host>                               which states the host is in (kept with them)
    /active_roles/<version>/<role>/<host>/address      the host's address in the role (lease)
    /active_roles/<version>/<role>/<host>/<interface>  each interface's address (lease)
    /members/<role>/<host>                      the host's agent is alive, with that role (lease)

Stages are ``provisioned``, ``configured`` and ``validated``; results ``success`` and
``failure``. Seed 003 puts ``active_roles`` under a version and a host; the role stands
between them, so that one range read answers "the hosts of role R at version V".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ephyra import names
from ephyra.errors import UsageError

STAGES: Final = ("provisioned", "configured", "validated")
RESULTS: Final = ("success", "failure")
#: The states of which a host is in exactly one (seed 003: "service state").
SERVICE_STATES: Final = tuple(f"{s}/{r}" for s in ("configured", "validated") for r in RESULTS)


def check_name(what: str, name: str) -> str:
    """``name`` if it can be one segment of a key; a clear error otherwise. A ``host`` is
    held to :data:`ephyra.names.NAME` and a ``version`` to :data:`ephyra.names.VERSION`
    (they also name log files and fill command templates)."""
    if what == "host":
        return names.check_name(name, "host name")
    if what == "version":
        return names.check_version(name)
    if not name or "/" in name or name in (".", "..") or not name.isprintable():
        raise UsageError(f"{what} {name!r} cannot be part of a key (no '/', not empty)")
    return name


@dataclass(frozen=True)
class Keys:
    prefix: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.prefix.rstrip("/"))

    def _k(self, *parts: str) -> str:
        return self.prefix + "/" + "/".join(parts)

    @property
    def current_version(self) -> str:
        return self._k("current_version")

    def history(self, stamp: int | None = None) -> str:
        return self._k("history", f"{stamp:020d}") if stamp is not None else self._k("history", "")

    def rollout(self, version: str) -> str:
        return self._k("rollout", version)

    def slots(self, version: str, role: str) -> str:
        return self._k("rollout", version, "slots", role, "")

    def updating(self, version: str, host: str = "") -> str:
        return self._k("rollout", version, "updating", host)

    def running(self, version: str | None = None, host: str | None = None) -> str:
        if version is None:
            return self._k("running_version", "")
        return (
            self._k("running_version", version, host)
            if host
            else self._k("running_version", version, "")
        )

    def status(self, state: str | None = None, version: str | None = None, host: str = "") -> str:
        """``state`` is ``stage/result``; without it, the root of every status."""
        if state is None:
            return self._k("status", "")
        return self._k("status", state, version, host) if version else self._k("status", state, "")

    def state(self, host: str = "") -> str:
        return self._k("state", host)

    def roles(self, version: str, role: str = "", host: str = "") -> str:
        if not role:
            return self._k("active_roles", version, "")
        return (
            self._k("active_roles", version, role, host, "")
            if host
            else self._k("active_roles", version, role, "")
        )

    def members(self, role: str = "") -> str:
        return self._k("members", role, "") if role else self._k("members", "")

    def member(self, role: str, host: str) -> str:
        return self._k("members", role, host)

    def relative(self, key: str, root: str) -> list[str]:
        """The segments of ``key`` below ``root`` (a key this layout built)."""
        return key[len(root) :].strip("/").split("/")
