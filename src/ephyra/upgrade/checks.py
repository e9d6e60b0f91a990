"""The preflight checks Ephyra ships (plugins of ``ephyra.preflight``).

- ``nova-services``: every Nova service record is up. A record that is down, whether its
  host died or is gone (a stale record left by a host removed without cleanup), holds the
  minimum service version of its cell down, and with it the RPC version every upgraded
  service speaks; Nova refuses to start a release that does not support it ("too old
  compute").
- ``upgrade-status``: each project's own upgrade check (``project_steps.P.status``, e.g.
  ``nova-status upgrade check``, which also compares the minimum compute service version
  of each cell with what the release supports), on the project's first control host:
  exit 0 ok, 1 warn, anything else block.
- ``placement``: Placement agrees with Nova: no allocation held for a server that no
  longer exists or runs elsewhere (:mod:`ephyra.compute.audit`), no compute node's
  resource provider without its compute service, and the reverse.
- ``capacity``: every batch of drained hosts fits on the other hosts (Placement's free
  room, as ``ephyra host evacuate`` plans it), counting the servers that leave their host
  only; and each drained host's servers' fates (:mod:`ephyra.compute.fate`): how many of
  each, and a warning for each server that will not be handled as it asks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ephyra.compute import audit, capacity
from ephyra.compute import fate as fates
from ephyra.compute.budget import Settings
from ephyra.compute.nova import ComputeCloud, Server
from ephyra.compute.plan import MOVES
from ephyra.errors import StrategyFailed
from ephyra.strategies import shell
from ephyra.strategies.base import Target, tail
from ephyra.upgrade.preflight import Check, Context, Level, Verdict

#: ``*-status upgrade check`` exit codes (oslo.upgradecheck): success, warning.
STATUS_OK, STATUS_WARN = 0, 1


class NovaServices(Check):
    name = "nova-services"

    def run(self, ctx: Context) -> list[Verdict]:
        assert ctx.cloud is not None
        records = ctx.cloud.every_service()
        out = []
        for record in records:
            if record.get("state") == "up":
                continue
            binary, host = record.get("binary"), record.get("host")
            seen = _ago(record.get("updated_at"))
            out.append(
                Verdict(
                    self.name,
                    Level.BLOCK,
                    f"{binary} on {host}",
                    f"down (last heartbeat {seen}): its record holds the minimum service "
                    "version of its cell, and the RPC version upgraded services speak, down",
                    f"start it, or if the host is gone delete its record: openstack compute "
                    f"service delete {record.get('id')}",
                )
            )
        if not out:
            out.append(Verdict(self.name, Level.OK, "Nova", f"{len(records)} service(s) up"))
        return out


def _ago(stamp: str | None) -> str:
    if not stamp:
        return "never"
    then = datetime.fromisoformat(stamp.replace("Z", "")).replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - then).total_seconds()
    return f"{stamp} UTC, {_span(seconds)} ago"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


class UpgradeStatus(Check):
    name = "upgrade-status"
    needs_cloud = False

    def run(self, ctx: Context) -> list[Verdict]:
        out = []
        for project, steps in ctx.spec.project_steps.items():
            if not steps.status:
                continue
            host = _first_host(ctx, project)
            if host is None:
                continue
            target = Target(host, ctx.spec.release)
            lines: list[str] = []
            try:
                shell.run(
                    steps.status,
                    target,
                    lines.append,
                    what=f"{project} upgrade check",
                    options=steps.options,
                    timeout=steps.timeout,
                )
                level, message = Level.OK, "passed"
            except StrategyFailed as exc:
                if exc.returncode is None:
                    raise
                level = Level.WARN if exc.returncode == STATUS_WARN else Level.BLOCK
                message = f"exited with {exc.returncode}: {tail(_findings(lines), 8)}"
            out.append(
                Verdict(
                    self.name,
                    level,
                    f"{project} on {host}",
                    message,
                    "" if level is Level.OK else f"see the output of {steps.status!r}",
                )
            )
        return out


def _findings(lines: list[str]) -> list[str]:
    """The rows of an upgrade check's table that are not a success (each from its
    ``Check:`` line to the end of its details); all lines when there is no such table."""
    rows: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        text = " ".join(line.strip().strip("|").split())
        if text.startswith("Check:"):
            current = [text]
            rows.append(current)
        elif not text.strip("+-= "):
            current = None
        elif current is not None:
            current.append(text)
    failed = [row for row in rows if not any(t == "Result: Success" for t in row)]
    return [text for row in failed for text in row] if rows else lines


def _first_host(ctx: Context, project: str) -> str | None:
    """The host of the project's first unit in the plan (its first control host)."""
    for stage in ctx.plan.stages:
        for unit in stage.units():
            if any(a.project == project for a in unit.actions):
                return unit.host
    return None


class PlacementConsistency(Check):
    name = "placement"

    def run(self, ctx: Context) -> list[Verdict]:
        assert ctx.cloud is not None
        todo = "start the upgrade with --heal, or run nova-manage placement audit --delete"
        out = [
            Verdict(self.name, Level.WARN, f"allocation {leak.consumer}", leak.describe(), todo)
            for leak in audit.leaks(ctx.cloud)
        ]
        nodes = ctx.cloud.compute_providers()
        computes = [r for r in ctx.cloud.every_service() if r.get("binary") == "nova-compute"]
        hosts_with_node = set(nodes.values())
        for record in computes:
            if record.get("host") not in hosts_with_node:
                out.append(
                    Verdict(
                        self.name,
                        Level.WARN,
                        f"nova-compute on {record.get('host')}",
                        "has no compute node (no resource provider): nothing is placed there",
                        "check its hypervisor, or delete the service record if the host is gone",
                    )
                )
        for uuid, name in sorted(ctx.cloud.providers_beside(nodes).items()):
            out.append(
                Verdict(
                    self.name,
                    Level.WARN,
                    f"resource provider {name} ({uuid})",
                    "offers VCPU or memory but is no compute node of Nova's (left behind "
                    "by a compute deleted without it?)",
                    f"if its host is gone: openstack resource provider delete {uuid}",
                )
            )
        if not out:
            out.append(Verdict(self.name, Level.OK, "Placement", "agrees with Nova"))
        return out


class Capacity(Check):
    name = "capacity"

    def run(self, ctx: Context) -> list[Verdict]:
        assert ctx.cloud is not None
        services = ctx.cloud.services()
        out = []
        for stage in ctx.plan.stages:
            for batch in stage.batches:
                drained = [u.host for u in batch.units if u.drain]
                if not drained:
                    continue
                servers = {}
                for host in drained:
                    on_host = ctx.cloud.servers_on(host)
                    decided = decide(ctx.cloud, on_host, ctx.spec.evacuation)
                    out += fate_verdicts(self.name, host, on_host, decided)
                    servers[host] = [s for s in on_host if decided[s.id].fate in MOVES]
                report = capacity.check(ctx.cloud, servers, services)
                if not report.fits:
                    out.append(
                        Verdict(
                            self.name,
                            Level.BLOCK,
                            f"drain of {', '.join(drained)}",
                            report.refusal(),
                            "make room, or drain fewer hosts at once (roles.ROLE.max_at_once)",
                        )
                    )
        if not any(v.level is Level.BLOCK for v in out):
            out.append(Verdict(self.name, Level.OK, "drains", "every batch fits on the others"))
        return out


def decide(
    cloud: ComputeCloud, servers: list[Server], settings: Settings
) -> dict[str, fates.Decision]:
    return {s.id: fates.decide(s, cloud.image_properties(s.image), settings) for s in servers}


def fate_verdicts(
    check: str, host: str, servers: list[Server], decided: dict[str, fates.Decision]
) -> list[Verdict]:
    """How many servers of ``host`` each fate has; a warning per server not handled as
    it asks (or as the specification's ``evacuation.fate`` asks)."""
    counted = ", ".join(f"{n} {fate}" for fate, n in fates.counts(decided).items())
    out = [Verdict(check, Level.OK, f"fates on {host}", counted or "no server")]
    for server in servers:
        decision = decided[server.id]
        if decision.fate != decision.asked.value:
            out.append(
                Verdict(
                    check,
                    Level.WARN,
                    f"{server.label} on {host}",
                    f"asked {decision.asked} ({decision.by}), planned {decision.fate}: "
                    f"{decision.why}",
                    f"set its metadata {fates.MAINTENANCE_KEY} to what it can have",
                )
            )
    return out
