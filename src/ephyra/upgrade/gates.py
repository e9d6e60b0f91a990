"""Health gates: what must be true of a host before the upgrade goes on.

- ``services_up``: every Nova service the unit upgraded is up, and has sent a heartbeat
  since the upgrade ended (so it is the new process that answers); nova-api answers.
- ``hypervisor_version``: the host's hypervisor reports the version given (a template,
  e.g. ``"{version}"``), compared as Nova compares them (``8.0.0`` is 8000000).
- ``checks``: commands (templates with {host} {version} {services}) that must exit 0,
  each run with ``sh -c``, its values shell-quoted (a placeholder must not stand inside
  quotes; ``$EPHYRA_HOST``, ``$EPHYRA_VERSION``... are the other way), stopped with its
  process group past its ``timeout`` (default 60 s). A host or version that is not a
  valid name or version is refused before any check runs.

A gate is polled every ``interval`` seconds until it passes; still red after
``timeout``, it fails the unit. A pause or abort ends the wait at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from oslo_utils import versionutils

from ephyra.compute.nova import ComputeCloud
from ephyra.engine.control import Control
from ephyra.errors import CloudError, GateFailed, StrategyFailed, UsageError
from ephyra.strategies import shell
from ephyra.strategies.base import Target, render, stream
from ephyra.upgrade.spec import Gates

#: Nova services with no service record (they answer as APIs instead).
API_SERVICES = frozenset({"nova-api", "nova-metadata-api", "nova-novncproxy"})


@dataclass
class Gate:
    gates: Gates
    cloud: ComputeCloud | None
    target: Target
    since: float  # epoch seconds the upgrade ended: heartbeats must be newer
    check_version: bool = True

    def failures(self) -> list[str]:
        """What is still wrong; empty when the gate is green."""
        out: list[str] = []
        if self.cloud is not None:
            try:
                out += self._nova()
            except CloudError as exc:
                out.append(str(exc))
        for check in self.gates.checks:
            command = render(check.command, self.target, shell=True)
            argv = shell.shell_argv(command, self.target)
            try:
                stream(argv, lambda line: None, what=check.name, timeout=check.timeout)
            except StrategyFailed as exc:
                out.append(str(exc))
        return out

    def _nova(self) -> list[str]:
        assert self.cloud is not None
        host = self.target.host
        out: list[str] = []
        services = [s for s in self.target.services if s.startswith("nova-")]
        if self.gates.services_up and services:
            records = {r["binary"]: r for r in self.cloud.service_records(host)}
            for name in services:
                if name in API_SERVICES:
                    self.cloud.services()  # raises if the API does not answer
                    continue
                record = records.get(name)
                if record is None:
                    out.append(f"{name} on {host}: no service record")
                elif record.get("state") != "up":
                    out.append(f"{name} on {host} is {record.get('state')}")
                elif _epoch(record.get("updated_at")) < self.since:
                    out.append(f"{name} on {host}: no heartbeat since the upgrade")
        template = self.gates.hypervisor_version
        wanted = template and self.check_version and "nova-compute" in self.target.services
        if wanted and not out:  # once the compute answers again
            want = _version_int(render(template, self.target))
            got = self.cloud.hypervisor_versions().get(host)
            if got != want:
                out.append(f"hypervisor of {host} reports version {got}, expected {want}")
        return out

    def wait(self, control: Control) -> None:
        """Poll until green; GateFailed with what is still red after the timeout."""
        deadline = _now() + self.gates.timeout
        while True:
            red = self.failures()
            if not red:
                return
            if _now() >= deadline:
                raise GateFailed(
                    f"{self.target.host}: health gate still red after "
                    f"{self.gates.timeout:.0f}s: {'; '.join(red)}"
                )
            control.sleep(self.gates.interval)


def _version_int(text: str) -> int:
    try:
        return int(versionutils.convert_version_to_int(text))
    except Exception as exc:
        raise UsageError(f"gates.hypervisor_version: {text!r} is not a version") from exc


def _epoch(stamp: str | None) -> float:
    """Nova's naive UTC timestamps as epoch seconds (0 when missing)."""
    if not stamp:
        return 0.0
    parsed = datetime.fromisoformat(stamp.replace("Z", ""))
    return parsed.replace(tzinfo=UTC).timestamp()


def _now() -> float:
    return datetime.now(UTC).timestamp()
