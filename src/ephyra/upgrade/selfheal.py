"""Self-healing and alerting told about planned maintenance: plugins of the entry-point
group ``ephyra.selfheal``, named in the specification's ``selfheal:`` list.

Before a batch's units run, its hosts (those of the plugin's ``roles``) *enter*
maintenance for every plugin; once every unit of the batch is done, they *leave* it. A
batch that fails or is paused stays entered (as a failed compute host stays disabled);
its leave comes when it is done on resume, or with its rollback; a run that ends
succeeded or rolled back leaves whatever is still entered. What a plugin did is kept in
the run's record ``selfheal`` before it acts, so a run killed anywhere undoes it after a
restart, and never undoes what it did not do (a Masakari host already in maintenance
stays so).

- ``masakari``: the host ``on_maintenance`` in its Masakari segment (``mode: host``), or
  the segment disabled (``mode: segment``), through the cloud's instance-ha API
  (``cloud:``, default the run's);
- ``alertmanager``: a silence of the batch's hosts (``label`` matches them, default
  ``instance``) in Alertmanager's API v2 at ``url``, ending at the latest after
  ``duration`` seconds, expired when the batch leaves; silences are found again by their
  creator and comment, which name the run and the batch;
- ``command``: ``enter`` and ``leave`` command templates per host (Ceph's
  ``ceph osd set-group noout {host}``), run where Ephyra runs or ``via`` a command,
  values shell-quoted; each must be safe to run twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from ephyra import plugins
from ephyra.errors import EphyraError, SelfHealError, UsageError
from ephyra.names import is_name
from ephyra.strategies import shell
from ephyra.strategies.base import COMMAND_TIMEOUT, Target
from ephyra.urls import is_http, redact

NAMESPACE = "ephyra.selfheal"
#: The run's record of what each plugin entered, per batch.
RECORD = "selfheal"
#: Masakari's API version that has a segment's ``enabled``.
MASAKARI_MICROVERSION = "1.2"
HTTP_TIMEOUT = 10.0


@dataclass
class Scope:
    """One plugin's part of one batch: its hosts, and what it keeps of them (saved in the
    run's record by ``save``)."""

    run_id: str
    batch: str
    hosts: tuple[str, ...]
    kept: dict[str, Any]
    save: Callable[[], None]
    cloud: str | None
    release: str
    output: Callable[[str], None]


class Notice(Protocol):
    """A self-healing or alerting service told about a batch's maintenance."""

    roles: tuple[str, ...]  # hosts of these roles only; empty: every host

    def enter(self, scope: Scope) -> None: ...

    def leave(self, scope: Scope) -> None: ...


def build(options: Mapping[str, Any], where: str) -> Notice:
    """The plugin an options mapping names with ``type``, its options checked."""
    if not isinstance(options, Mapping) or not isinstance(options.get("type"), str):
        known = ", ".join(plugins.names(NAMESPACE))
        raise UsageError(f"{where}: a mapping with a type ({known})")
    cls = plugins.load(NAMESPACE, str(options["type"]), Notice)
    return cls({k: v for k, v in options.items() if k != "type"}, where)  # type: ignore[call-arg]


class _Options:
    def __init__(self, options: Mapping[str, Any], where: str, known: set[str]) -> None:
        extra = sorted(set(options) - known - {"roles"})
        if extra:
            raise UsageError(f"{where}: unknown key(s) {', '.join(extra)}")
        self.options, self.where = options, where

    def text(self, key: str, default: str = "") -> str:
        value = self.options.get(key, default)
        if not isinstance(value, str):
            raise UsageError(f"{self.where}.{key}: expected a string, got {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise UsageError(f"{self.where}.{key}: expected a positive number, got {value!r}")
        return float(value)

    def roles(self, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.options.get("roles", list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{self.where}.roles: expected a list of roles, got {value!r}")
        return tuple(value)


# -- Masakari ---------------------------------------------------------------------------
class Masakari:
    """Masakari's hosts on maintenance, or their segments disabled."""

    def __init__(self, options: Mapping[str, Any], where: str) -> None:
        read = _Options(options, where, {"mode", "cloud"})
        self.mode = read.text("mode", "host")
        if self.mode not in ("host", "segment"):
            raise UsageError(f"{where}.mode: host or segment, not {self.mode!r}")
        self.cloud = read.text("cloud")
        self.roles = read.roles(("compute",))
        self._conn: Any = None

    def _call(self, scope: Scope, verb: str, path: str, action: str, body: Any = None) -> Any:
        from ephyra.clouds import connect, translated  # (openstacksdk: only when used)

        name = self.cloud or scope.cloud
        if not name:
            raise UsageError("selfheal masakari: name a cloud (cloud:, or the run's --os-cloud)")
        with translated(name, action, "instance-ha"):
            if self._conn is None:
                self._conn = connect(name)
            response = getattr(self._conn.instance_ha, verb)(
                path, json=body, microversion=MASAKARI_MICROVERSION, raise_exc=False
            )
        if response.status_code >= 400:
            raise SelfHealError(f"{name}: {action}: Masakari answered {response.status_code}")
        return response.json() if response.content else None

    def _index(self, scope: Scope) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Each Masakari host by name, with its segment."""
        index = {}
        segments = self._call(scope, "get", "/segments", "list Masakari segments")["segments"]
        for segment in segments:
            found = self._call(
                scope, "get", f"/segments/{segment['uuid']}/hosts", "list Masakari hosts"
            )["hosts"]
            index.update({entry["name"]: (segment, entry) for entry in found})
        return index

    def enter(self, scope: Scope) -> None:
        index = self._index(scope) if set(scope.hosts) - set(scope.kept) else {}
        for host in scope.hosts:
            state = scope.kept.get(host)
            if state is None:
                where = index.get(host)
                if where is None:
                    scope.output(f"masakari: {host} is in no segment: nothing to tell")
                    state = {"absent": True}
                else:
                    segment, entry = where
                    was = segment["enabled"] if self.mode == "segment" else entry["on_maintenance"]
                    state = {"segment": segment["uuid"], "host": entry["uuid"], "was": was}
                scope.kept[host] = state
                scope.save()
            self._set(scope, host, state, entering=True)

    def leave(self, scope: Scope) -> None:
        for host in list(scope.kept):
            self._set(scope, host, scope.kept[host], entering=False)
            del scope.kept[host]
            scope.save()

    def _set(self, scope: Scope, host: str, state: Mapping[str, Any], *, entering: bool) -> None:
        if state.get("absent"):
            return
        segment = state["segment"]
        if self.mode == "segment":
            if not state["was"]:
                return  # disabled before the run: left so
            body = {"segment": {"enabled": not entering}}
            self._call(scope, "put", f"/segments/{segment}", f"set segment {segment}", body)
            scope.output(f"masakari: segment {segment} {'disabled' if entering else 'enabled'}")
            return
        if state["was"]:
            return  # on maintenance before the run: left so
        body = {"host": {"on_maintenance": entering}}
        path = f"/segments/{segment}/hosts/{state['host']}"
        self._call(scope, "put", path, f"set Masakari host {host}", body)
        scope.output(f"masakari: {host} {'on' if entering else 'off'} maintenance")


# -- Alertmanager -----------------------------------------------------------------------
CREATED_BY = "ephyra"


class Alertmanager:
    """A silence of each batch's hosts in Alertmanager (API v2)."""

    def __init__(self, options: Mapping[str, Any], where: str) -> None:
        read = _Options(options, where, {"url", "label", "duration"})
        self.url = read.text("url").rstrip("/")
        if not is_http(self.url):
            raise UsageError(f"{where}.url: Alertmanager's http(s) URL, not {redact(self.url)!r}")
        self.label = read.text("label", "instance")
        if not is_name(self.label):
            raise UsageError(f"{where}.label: a label name, not {self.label!r}")
        self.duration = read.number("duration", 4 * 3600.0)
        self.roles = read.roles(())

    @staticmethod
    def marker(scope: Scope) -> str:
        return f"ephyra run {scope.run_id} batch {scope.batch}:"

    def _request(self, verb: str, path: str, action: str, body: Any = None) -> Any:
        try:
            response = requests.request(
                verb, f"{self.url}/api/v2{path}", json=body, timeout=HTTP_TIMEOUT
            )
        except requests.RequestException as exc:
            raise SelfHealError(
                f"Alertmanager at {self.url}: {action}: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise SelfHealError(
                f"Alertmanager at {self.url}: {action}: it answered {response.status_code}"
            )
        return response.json() if response.content else None

    def ours(self, scope: Scope) -> list[dict[str, Any]]:
        """The silences of this run's batch that still hold."""
        found = self._request("get", "/silences", "list silences") or []
        return [
            s
            for s in found
            if s.get("createdBy") == CREATED_BY
            and str(s.get("comment", "")).startswith(self.marker(scope))
            and s.get("status", {}).get("state") in ("active", "pending")
        ]

    def enter(self, scope: Scope) -> None:
        if not scope.hosts or self.ours(scope):
            return
        now = time.time()
        body = {
            "matchers": [
                {
                    "name": self.label,
                    "value": "|".join(sorted(scope.hosts)),
                    "isRegex": True,
                    "isEqual": True,
                }
            ],
            "startsAt": _iso(now),
            "endsAt": _iso(now + self.duration),
            "createdBy": CREATED_BY,
            "comment": f"{self.marker(scope)} upgrade of {', '.join(sorted(scope.hosts))}",
        }
        made = self._request("post", "/silences", "create a silence", body)
        silence = made.get("silenceID") if isinstance(made, Mapping) else None
        scope.output(f"alertmanager: silence {silence} for {len(scope.hosts)} host(s)")

    def leave(self, scope: Scope) -> None:
        for silence in self.ours(scope):
            self._request("delete", f"/silence/{silence['id']}", "expire a silence")
            scope.output(f"alertmanager: silence {silence['id']} expired")


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".000Z"


# -- commands ---------------------------------------------------------------------------
class Command:
    """An operator's commands per host: ``enter`` before, ``leave`` after."""

    def __init__(self, options: Mapping[str, Any], where: str) -> None:
        read = _Options(options, where, {"enter", "leave", "via", "timeout"})
        self.enter_command, self.leave_command = read.text("enter"), read.text("leave")
        if not self.enter_command or not self.leave_command:
            raise UsageError(f"{where}: a command needs both enter and leave")
        self.via = read.text("via")
        self.timeout = read.number("timeout", COMMAND_TIMEOUT)
        self.roles = read.roles(())

    def _run(self, scope: Scope, template: str, host: str, what: str) -> None:
        options = {"via": self.via} if self.via else {}
        target = Target(host, scope.release)
        shell.run(
            template,
            target,
            lambda line: scope.output(f"{host}: {line}"),
            what=what,
            options=options,
            timeout=self.timeout,
        )

    def enter(self, scope: Scope) -> None:
        for host in scope.hosts:
            if scope.kept.get(host) == "entered":
                continue
            scope.kept[host] = "entering"  # killed here, the command runs again
            scope.save()
            self._run(scope, self.enter_command, host, "selfheal enter")
            scope.kept[host] = "entered"
            scope.save()

    def leave(self, scope: Scope) -> None:
        for host in list(scope.kept):
            self._run(scope, self.leave_command, host, "selfheal leave")
            del scope.kept[host]
            scope.save()


# -- the run's side ---------------------------------------------------------------------
class Told:
    """Every plugin of a run's specification, and what each entered (the run's record)."""

    def __init__(
        self,
        notices: Sequence[Notice],
        kept: dict[str, Any],
        save: Callable[[dict[str, Any]], None],
        *,
        run_id: str,
        cloud: str | None,
        release: str,
        output: Callable[[str], None],
    ) -> None:
        self.notices, self.kept, self._save = notices, kept, save
        self.run_id, self.cloud, self.release, self.output = run_id, cloud, release, output

    def _scope(self, index: int, batch: str, hosts: Sequence[str]) -> Scope:
        mine: dict[str, Any] = self.kept.setdefault(str(index), {})
        return Scope(
            self.run_id,
            batch,
            tuple(hosts),
            mine.setdefault(batch, {}),
            lambda: self._save(self.kept),
            self.cloud,
            self.release,
            self.output,
        )

    def enter(self, batch: str, hosts: Mapping[str, str]) -> None:
        """``hosts`` (host -> role) enter maintenance for every plugin of their roles."""
        for index, notice in enumerate(self.notices):
            chosen = [h for h, role in hosts.items() if not notice.roles or role in notice.roles]
            if chosen:
                scope = self._scope(index, batch, chosen)
                self._save(self.kept)  # the batch is known to have entered before it acts
                with _paused():
                    notice.enter(scope)

    def leave(self, batch: str | None = None) -> None:
        """The batch's hosts (every batch's, without one) leave maintenance."""
        for index, notice in enumerate(self.notices):
            batches = list(self.kept.get(str(index), {}))
            for key in batches if batch is None else [batch]:
                if key in self.kept.get(str(index), {}):
                    with _paused():
                        notice.leave(self._scope(index, key, ()))
                    del self.kept[str(index)][key]
                    self._save(self.kept)


@contextlib.contextmanager
def _paused() -> Iterator[None]:
    """Any error of Ephyra's telling a service is one that pauses the run."""
    try:
        yield
    except SelfHealError:
        raise
    except EphyraError as exc:
        raise SelfHealError(str(exc)) from exc
