"""The operations of :class:`ephyra.operations.local.Local`, done by a running ``ephyra serve``
(``ephyra --url URL``): the same methods, the same answers. A run started, resumed or
rolled back through it is driven by the server; this side follows its event stream and
shows the progress as if it were driving it (Ctrl-C asks the server to pause it).

A token goes only where it is safe: over https (checked against ``cacert``, else the system's
CAs), or over plain http to this machine (127.0.0.0/8, ::1, localhost). Plain http to another
host carries one only when the caller says so (``insecure_http``).
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from ephyra.bodies import Body
from ephyra.engine.journal import RunInfo
from ephyra.engine.states import FINISHED, RunState
from ephyra.errors import EphyraError, StepFailed, UsageError
from ephyra.net import why
from ephyra.operations.bodies import EnvUpgradeBody, TriggerBody, VerifyBody
from ephyra.operations.codes import raise_for
from ephyra.operations.protocol import (
    EnvImported,
    EnvSummary,
    Host,
    Operations,
    Planned,
    Progress,
    Roles,
    RunDetail,
    Triggered,
    Triggering,
    Verdict,
)
from ephyra.progress import Observer
from ephyra.urls import is_http, redact, redact_text

if TYPE_CHECKING:
    from ephyra.engine.metrics import Exports
    from ephyra.netscheme.serializers import Mode

TIMEOUT = 600.0  # planning a large cloud takes a while
#: A step's status in an event -> the observer's word.
STEP_STATUS = {"finished": "done"}


def plain_and_far(url: str) -> bool:
    """Whether ``url`` is plain http to another machine, where a token would travel in clear
    (UsageError if it is not an http or https URL with a host)."""
    if not is_http(url):
        raise UsageError(f"--url {redact(url)!r}: expected http(s)://HOST[:PORT]")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


def system_cas() -> str | bool:
    """The system's CA certificates (a file or a directory), else requests' own bundle."""
    paths = ssl.get_default_verify_paths()
    for found in (paths.cafile, paths.capath):
        if found and Path(found).exists():
            return found
    return True


class Remote:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        cacert: str | None = None,
        insecure_http: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        if token and plain_and_far(self.url) and not insecure_http:
            raise UsageError(
                f"will not send a token in clear to {redact(self.url)}: use https "
                "(ephyra serve --tls-cert/--tls-key), or say --insecure-http"
            )
        if cacert and not Path(cacert).is_file():
            raise UsageError(f"no CA certificate file {cacert}")
        self._http = requests.Session()
        self._http.trust_env = False  # a proxy of the environment has no business on loopback
        self._http.verify = cacert or system_cas()
        if token:
            self._http.headers["X-Auth-Token"] = token

    def _unreachable(self, exc: requests.RequestException) -> EphyraError:
        return EphyraError(
            f"cannot reach ephyra serve at {redact(self.url)}: {why(exc) or redact_text(str(exc))}"
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self._http.request(
                method, self.url + path, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs
            )
        except requests.RequestException as exc:
            raise self._unreachable(exc) from exc
        if answer.status_code >= 400:
            raise_for(answer.status_code, _error_of(answer))
        return answer.json()

    # -- runs of every kind ------------------------------------------------------
    def runs(self, kind: str | None = None) -> list[Progress]:
        found: list[Progress] = self._call(
            "GET", "/v1/runs", params={"kind": kind} if kind else None
        )["runs"]
        return found

    def run(self, ident: str) -> RunDetail:
        found: RunDetail = self._call("GET", f"/v1/runs/{ident}")
        return found

    def events(self, ident: str | None, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        if not ident:
            raise EphyraError("name the run whose events to show")
        found: list[dict[str, Any]] = self._call(
            "GET", f"/v1/runs/{ident}/events", params={"after": after, "limit": limit}
        )["events"]
        return found

    def report(self, ident: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/v1/runs/{ident}/report")
        return found

    def kind_runs(self, kind: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", f"/v1/{kind}/runs")["runs"]
        return found

    def status(self, kind: str, ident: str | None) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/v1/{kind}/runs/{ident or 'latest'}")
        return found

    def pause(self, kind: str, ident: str | None) -> str:
        answer = self._call("POST", f"/v1/{kind}/runs/{ident or 'latest'}/pause")
        return str(answer["message"])

    def abort(self, kind: str, ident: str | None, observer: Observer) -> str:
        answer = self._call("POST", f"/v1/{kind}/runs/{ident or 'latest'}/abort")
        return str(answer["message"])

    def resume(
        self,
        kind: str,
        ident: str | None,
        observer: Observer,
        exports: Exports | None = None,
        *,
        settings: dict[str, Any] | None = None,
    ) -> RunInfo:
        """The server resumes the run (and exports its metrics, if it does), with
        ``settings`` changed from now on; this side follows it."""
        path = f"/v1/{kind}/runs/{ident or 'latest'}/resume"
        answer = self._call("POST", path, json=settings or {})
        return self.follow(kind, answer["id"], int(answer.get("seq", 0)), observer)

    def rollback(
        self, kind: str, ident: str | None, observer: Observer, exports: Exports | None = None
    ) -> RunInfo:
        answer = self._call("POST", f"/v1/{kind}/runs/{ident or 'latest'}/rollback")
        return self.follow(kind, answer["id"], int(answer.get("seq", 0)), observer)

    def approve(
        self,
        ident: str | None,
        observer: Observer,
        exports: Exports | None = None,
        *,
        stage: str | None = None,
        by: str = "",
    ) -> RunInfo:
        """The server keeps the approval (by the token's user) and resumes the run;
        this side follows it."""
        path = f"/v1/upgrade/runs/{ident or 'latest'}/approve"
        answer = self._call("POST", path, json={"stage": stage} if stage else {})
        observer.message(str(answer["message"]))
        return self.follow("upgrade", answer["id"], int(answer.get("seq", 0)), observer)

    def step(
        self, ident: str | None, observer: Observer, exports: Exports | None = None
    ) -> RunInfo:
        answer = self._call("POST", f"/v1/upgrade/runs/{ident or 'latest'}/step")
        observer.message(str(answer["message"]))
        return self.follow("upgrade", answer["id"], int(answer.get("seq", 0)), observer)

    def finish(self, kind: str, ident: str | None, observer: Observer) -> str:
        """The server finishes the run; this side shows it until it ends."""
        answer = self._call("POST", f"/v1/{kind}/runs/{ident or 'latest'}/finish")
        short = str(answer["id"])[:8]
        if "already" in str(answer.get("message")):
            return str(answer["message"])
        ended = ""
        for event in self._stream(str(answer["id"]), int(answer.get("seq", 0))):
            if _show(event, observer):
                ended = str(event["state"])
                break
        if ended != FINISHED:
            raise StepFailed(f"run {short}: its finish is not done: run finish again")
        return f"run {short} finished"

    # -- planning and starting -------------------------------------------------
    def plan(self, kind: str, body: Body) -> Planned:
        found: Planned = self._call("POST", f"/v1/{kind}/plan", json=body.wire())
        return found

    def start(
        self, kind: str, body: Body, observer: Observer, *, exports: Exports | None = None
    ) -> RunInfo:
        answer = self._call("POST", f"/v1/{kind}/runs", json=body.wire())
        return self.follow(kind, answer["id"], 0, observer)

    def follow(self, kind: str, run_id: str, after: int, observer: Observer) -> RunInfo:
        """Show a run's events until it ends (paused, failed, succeeded, ...)."""
        try:
            for event in self._stream(run_id, after):
                if _show(event, observer):
                    break
        except KeyboardInterrupt:
            observer.message(self.pause(kind, run_id))
            raise
        summary = self.run(run_id)["run"]
        return RunInfo(run_id, kind, RunState(summary["state"]), {"reason": summary["reason"]})

    def _stream(self, run_id: str, after: int) -> Iterator[dict[str, Any]]:
        try:
            answer = self._http.get(
                f"{self.url}/v1/runs/{run_id}/events/stream",
                params={"after": after},
                stream=True,
                timeout=(10, None),
            )
        except requests.RequestException as exc:
            raise self._unreachable(exc) from exc
        if answer.status_code >= 400:
            raise_for(answer.status_code, _error_of(answer))
        with answer:
            data: list[str] = []
            for line in answer.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []

    # -- hosts, inventory ------------------------------------------------------------
    def hosts(self, cloud: str) -> list[Host]:
        found: list[Host] = self._call("GET", "/v1/hosts", params={"cloud": cloud})["hosts"]
        return found

    def maintenance(self, cloud: str, host: str, on: bool) -> str:
        body = {"cloud": cloud, "state": "on" if on else "off"}
        return str(self._call("PUT", f"/v1/hosts/{host}/maintenance", json=body)["message"])

    def clouds(self) -> list[str]:
        return list(self._call("GET", "/v1/clouds")["clouds"])

    def inventory(self, sources: list[str], cloud: str | None, role: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"source": sources}
        if cloud:
            params["cloud"] = cloud
        if role:
            params["role"] = role
        found: dict[str, Any] = self._call("GET", "/v1/inventory", params=params)
        return found

    # -- versions ----------------------------------------------------------------
    def trigger(self, body: TriggerBody) -> Triggered:
        found: Triggered = self._call("POST", "/v1/versions/trigger", json=body.wire())
        return found

    def verify(self, body: VerifyBody) -> Verdict:
        found: Verdict = self._call("POST", "/v1/versions/verify", json=body.wire())
        return found

    def version_status(self) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", "/v1/versions/status")
        return found

    def version_history(self) -> list[Triggering]:
        return list(self._call("GET", "/v1/versions/history")["history"])

    def roles(self, role: str | None, version: str | None) -> Roles:
        params = {k: v for k, v in (("role", role), ("version", version)) if v}
        found: Roles = self._call("GET", "/v1/roles", params=params)
        return found

    # -- environments ------------------------------------------------------------
    def env_list(self) -> list[EnvSummary]:
        return list(self._call("GET", "/v1/clusters")["clusters"])

    def env_show(self, ref: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/v1/clusters/{ref}")
        return found

    def env_import(self, doc: dict[str, Any], replace: bool = False) -> EnvImported:
        found: EnvImported = self._call(
            "POST", "/v1/clusters", json=doc, params={"replace": str(replace).lower()}
        )
        return found

    def env_upgrade(self, ref: str, body: EnvUpgradeBody) -> EnvSummary:
        found: EnvSummary = self._call("PUT", f"/v1/clusters/{ref}/upgrade", json=body.wire())
        return found

    def env_installed(self, ref: str, node: str) -> EnvSummary:
        found: EnvSummary = self._call("PUT", f"/v1/clusters/{ref}/nodes/{node}/installed")
        return found

    def deployment_info(
        self, ref: str, nodes: list[str], mode: Mode | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"nodes": nodes}
        if mode:
            params["mode"] = mode
        path = f"/v1/clusters/{ref}/orchestrator/deployment/defaults"
        return list(self._call("GET", path, params=params)["nodes"])


_: type[Operations] = Remote  # mypy: Remote does every operation, with the same types


def _error_of(answer: requests.Response) -> tuple[str, str]:
    try:
        error = answer.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "http_error", f"HTTP {answer.status_code}: {redact_text(answer.text[:200])}"


def _show(event: dict[str, Any], observer: Observer) -> bool:
    """Pass an event to the observer; True when the run's drive has ended."""
    kind = event["type"]
    if kind == "run.started":
        observer.started(event["title"], event["total"], event["done"])
    elif kind == "step":
        status = STEP_STATUS.get(event["status"], event["status"])
        observer.step(event["node"], event["step"], status, float(event.get("seconds") or 0))
    elif kind == "node":
        observer.node(event["node"], event["outcome"], event.get("detail", ""))
    elif kind == "message":
        observer.message(event["text"])
    elif kind == "run.finished":
        observer.finished(event["state"])
        return True
    return False
