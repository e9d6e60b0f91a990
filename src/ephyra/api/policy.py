"""Who may do what through the API: every rule in one place, as oslo.policy rules.

Three roles, as Keystone's default roles mean them: ``reader`` only reads; ``member``
also plans and pauses or resumes a run (it can stop harm and let work go on, not start
or undo it); ``admin`` operates everything. An operator changes any rule with a policy
file (``ephyra serve --policy-file``, YAML, oslo.policy's format): that file and no other
(oslo's search of ``~``, ``/etc`` and their ``policy.d`` is not used), read again when it
changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oslo_config import cfg
from oslo_policy import policy

from ephyra.errors import EphyraError, UsageError

LOG = logging.getLogger(__name__)
#: How often (seconds) the policy file is looked at for a change, at most.
RECHECK = 1.0

BASE = (
    policy.RuleDefault("admin", "role:admin", "Operates everything."),
    policy.RuleDefault("member", "role:member or rule:admin", "Plans, pauses, resumes."),
    policy.RuleDefault("reader", "role:reader or rule:member", "Reads."),
)
#: Action -> (default rule, what it allows). The API names one action per route.
ACTIONS: Mapping[str, tuple[str, str]] = {
    "run:list": ("rule:reader", "list runs, see a run and its events"),
    "run:plan": ("rule:member", "plan a run (a dry run: nothing changes)"),
    "run:start": ("rule:admin", "start a forklift, upgrade or evacuation"),
    "run:pause": ("rule:member", "pause a run at its next step boundary"),
    "run:resume": ("rule:member", "resume a paused or failed run"),
    "run:abort": ("rule:admin", "abort a run for good"),
    "run:rollback": ("rule:admin", "roll a run back"),
    "run:finish": ("rule:admin", "make a run final: delete what its rollback would need"),
    "run:approve": ("rule:admin", "approve an upgrade's stage that waits for it (it resumes)"),
    "run:step": ("rule:admin", "run an upgrade's next stage, then pause it again"),
    "host:list": ("rule:reader", "list compute hosts and their maintenance state"),
    "host:maintenance": ("rule:admin", "put a compute host in or out of maintenance"),
    "host:evacuate": ("rule:admin", "empty compute hosts by live migration"),
    "host:reallocate": ("rule:admin", "hand compute hosts over to another cloud"),
    "tenant:maintenance": ("rule:admin", "freeze a project read-only through Keystone"),
    "tenant:migrate": ("rule:admin", "move a project's workload to another cloud"),
    "inventory:show": ("rule:reader", "discover the inventory"),
    "version:read": ("rule:reader", "versions, history, roles"),
    "version:trigger": ("rule:admin", "trigger a new desired version"),
    "env:read": ("rule:reader", "environments and their nodes' deployment information"),
    "env:change": ("rule:admin", "import an environment, upgrade it, record a node installed"),
    "metrics:read": ("rule:reader", "read Prometheus metrics"),
    "audit:read": ("rule:admin", "read the audit trail: who did what, through the API or CLI"),
}


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to."""

    user: str
    project: str
    roles: tuple[str, ...]
    extra: dict[str, str] = field(default_factory=dict)
    project_id: str = ""  # Keystone: the token's project id, and its project's domain
    domain: str = ""

    def creds(self) -> dict[str, object]:
        return {"user_id": self.user, "project_id": self.project, "roles": list(self.roles)}


class Policy:
    """The rules: the package's defaults, overridden by ``policy_file`` alone (no file is
    looked for in ``~``, ``~/.ephyra``, ``/etc`` or ``/etc/ephyra``). The file is looked at
    again at most every ``recheck`` seconds: when it changed (modified, replaced, resized),
    its rules replace the old ones and the decisions kept are forgotten; a file that no
    longer reads keeps the rules last read (and says so in the log)."""

    def __init__(self, policy_file: str | None = None, recheck: float = RECHECK) -> None:
        self._path = Path(policy_file).absolute() if policy_file else None
        if self._path is not None and not self._path.is_file():
            raise UsageError(f"no policy file {policy_file}")
        self._recheck = recheck
        self._lock = threading.Lock()
        self._seen: tuple[int, ...] | None = None
        self._checked = time.monotonic()
        self._decided: dict[tuple[str, str, str, tuple[str, ...]], bool] = {}
        self._enforcer = _enforcer(self._read() if self._path else None)

    def _read(self) -> str:
        assert self._path is not None
        stat = self._path.stat()
        self._seen = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
        try:
            return self._path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read policy file {self._path}: {exc}") from exc

    def _refresh(self) -> None:
        """Read the policy file again if it changed since it was read."""
        now = time.monotonic()
        if self._path is None or now - self._checked < self._recheck:
            return
        with self._lock:
            self._checked = now
            try:
                stat = self._path.stat()
                if (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size) == self._seen:
                    return
                enforcer = _enforcer(self._read())
            except (OSError, EphyraError) as exc:
                LOG.error("policy file %s: %s; the rules last read stay", self._path, exc)
                return
            self._enforcer = enforcer
            self._decided = {}
            LOG.warning("policy file %s read again: new rules apply", self._path)

    def allows(self, action: str, who: Identity) -> bool:
        """Whether ``who`` may do ``action``; rules see only the caller's user, project
        and roles (no target), so each decision is kept for those until the file changes."""
        if action not in ACTIONS:
            raise KeyError(f"no policy rule for {action!r}")
        self._refresh()
        key = (action, who.user, who.project, who.roles)
        decided = self._decided
        found = decided.get(key)
        if found is None:
            found = bool(self._enforcer.enforce(f"ephyra:{action}", {}, who.creds()))
            decided[key] = found
        return found

    def allowed(self, who: Identity) -> dict[str, bool]:
        return {action: self.allows(action, who) for action in ACTIONS}


def _defaults() -> list[policy.RuleDefault]:
    return [
        *BASE,
        *(policy.RuleDefault(f"ephyra:{n}", rule, text) for n, (rule, text) in ACTIONS.items()),
    ]


def _enforcer(text: str | None) -> policy.Enforcer:
    """An enforcer of the defaults overridden by ``text`` (YAML or JSON), which never looks
    for a policy file or directory of its own."""
    conf = cfg.ConfigOpts()
    conf([], project="ephyra", default_config_files=[], default_config_dirs=[])
    enforcer = policy.Enforcer(conf, use_conf=False, overwrite=True)
    enforcer.register_defaults(_defaults())
    rules: dict[str, Any] = {d.name: d.check for d in _defaults()}
    if text:
        try:
            rules.update(policy.Rules.load(text))
        except Exception as exc:  # oslo.policy raises what its YAML and rule parsers raise
            raise UsageError(f"policy file: not oslo.policy YAML: {exc}") from exc
    enforcer.set_rules(policy.Rules(rules), overwrite=True, use_conf=False)
    return enforcer
