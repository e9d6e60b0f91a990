"""The settings apply run: a settings document made true of a cloud, change by change
(``ephyra settings apply DOCUMENT --os-cloud B``), and taken back by its rollback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ephyra.engine.kinds import (
    NewRun,
    Resolver,
    RunKind,
    RunStatus,
    Shown,
    Verbs,
    View,
    cloud_of,
    cloud_option,
    created,
    headline,
)
from ephyra.engine.states import Phase
from ephyra.errors import UsageError
from ephyra.settings.records import (
    DONE,
    PREFIX,
    SettingsDetail,
    SettingsMeta,
    record_name,
    settings_lock,
)

if TYPE_CHECKING:
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.progress import Observer
    from ephyra.settings.body import SettingsBody
    from ephyra.settings.plan import SettingsPlan

DESCRIPTION = """\
An environment's settings, from one cloud to another.

export                the settings of a cloud as a document (YAML, or JSON with -f json):
                      identity, flavors, quotas, aggregates, server groups, placement's
                      custom resource classes and traits, shared and external networks.
plan DOCUMENT         what `apply` would change on a cloud (a dry run): each create,
                      update (field: old -> new) and, with --prune, delete.
apply DOCUMENT        make the cloud's settings the document's; nothing is deleted
                      unless --prune. Each change is recorded with what the cloud had
                      before it, before it is made.

An apply is a run: status, list, pause, resume, abort and rollback RUN as every run; its
rollback takes back exactly what it changed. See docs/settings.md.
"""


def read_document(path: str) -> dict[str, Any]:
    """The document in the file ``path`` ("-": standard input), checked."""
    from ephyra.settings.document import loads

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return loads(text)


class SettingsKind(RunKind["SettingsPlan"]):
    name = "settings"
    rank = 50
    command = "settings"
    start_verb = "apply"
    summary = "an environment's settings: export from one cloud, apply to another"
    description = DESCRIPTION
    verbs = Verbs(
        plan="what an apply would change on the cloud (a dry run)",
        start="make the cloud's settings the document's, change by change",
        rollback="take back what the apply changed: created deleted, changed set back, "
        "pruned made again",
        pause="ask a running apply to stop at its next change",
        abort="stop an apply for good (what it changed stays, for rollback)",
        status="where an apply is, and each of its changes",
        list="every settings apply in the journal",
    )
    items, item_name = "changes", "change"
    list_columns = ("id", "state", "cloud", "source", "changes", "created")
    after_abort = "what the apply changed stays until rollback"

    # -- a start request ---------------------------------------------------------------
    def body_type(self) -> type[SettingsBody]:
        from ephyra.settings.body import SettingsBody

        return SettingsBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "document", metavar="DOCUMENT", help="the settings document (YAML or JSON; - stdin)"
        )
        cloud_option(parser, "the cloud to change, with an admin's credentials (default: OS_CLOUD)")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="also delete what the cloud has and the document does not",
        )

    def body_of(self, args: argparse.Namespace) -> SettingsBody:
        return self.body_type().build(
            cloud=cloud_of(args), document=read_document(args.document), prune=args.prune
        )

    def question(self, plan: Mapping[str, Any]) -> str:
        return f"Apply {len(plan['changes'])} change(s) to {plan['cloud']}? [y/N] "

    # -- planning ----------------------------------------------------------------------
    def claims(self, body: SettingsBody) -> list[str]:
        return [settings_lock(body.cloud)]

    def plan(self, body: SettingsBody, resolver: Resolver) -> SettingsPlan:
        from ephyra.settings.cloud import SettingsCloud
        from ephyra.settings.plan import make_plan

        return make_plan(SettingsCloud.connect(body.cloud), body.document, body.prune)

    def shown(self, plan: SettingsPlan, body: SettingsBody) -> Shown:
        return Shown(plan.to_dict(), plan.text())

    def new_run(self, plan: SettingsPlan) -> NewRun:
        meta = SettingsMeta(plan.cloud, plan.source, plan.prune, len(plan.changes))
        records = {
            record_name(i): {"change": change.to_dict()} for i, change in enumerate(plan.changes)
        }
        return NewRun(meta.to_meta(), records, [settings_lock(plan.cloud)])

    def locks_of(self, run: RunInfo) -> list[str]:
        return [settings_lock(SettingsMeta.from_meta(run.meta).cloud)]

    # -- driving -----------------------------------------------------------------------
    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: SettingsPlan | None = None,
    ) -> RunDriver:
        from ephyra.settings.runner import SettingsDriver

        return SettingsDriver(journal, run, observer, metrics, target=plan.target if plan else None)

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[SettingsDetail]:
        from ephyra.settings.diff import Change

        meta = SettingsMeta.from_meta(run.meta)
        records = journal.records(run.id, PREFIX)
        rows = []
        for i in range(meta.changes):
            data = records.get(record_name(i)) or {}
            rows.append(
                {
                    "change": Change.from_dict(data["change"]).said() if data else "?",
                    "forward": data.get(Phase.FORWARD.value) or "pending",
                    "rollback": data.get(Phase.ROLLBACK.value) or "",
                    "error": data.get("error") or "",
                }
            )
        detail = SettingsDetail(meta.cloud, meta.source, meta.prune, tuple(rows))
        return RunStatus.of(run, detail)

    def view(self, status: Mapping[str, Any]) -> View:
        where = f" on {status['cloud']}"
        return View(headline(status, where), [("changes", ["change", *Phase])])

    def row(self, run: RunInfo) -> dict[str, Any]:
        meta = SettingsMeta.from_meta(run.meta)
        return {
            "id": run.id,
            "state": run.state.value,
            "cloud": meta.cloud,
            "source": meta.source,
            "changes": meta.changes,
            "created": created(run),
        }

    def title(self, run: RunInfo) -> str:
        meta = SettingsMeta.from_meta(run.meta)
        return f"settings of {meta.source or 'a document'} onto {meta.cloud}"

    def total(self, run: RunInfo) -> int:
        return SettingsMeta.from_meta(run.meta).changes

    def tally(self, run: RunInfo, outcomes: Mapping[str, str]) -> tuple[int, int]:
        found = list(outcomes.values())
        return sum(1 for o in found if o.startswith(DONE)), sum(1 for o in found if o == "failed")
