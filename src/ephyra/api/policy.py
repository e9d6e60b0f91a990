"""Who may do what through the API: every rule in one place, as oslo.policy rules.

Three roles, as Keystone's default roles mean them: ``reader`` only reads; ``member``
also plans and pauses or resumes a run (it can stop harm and let work go on, not start
or undo it); ``admin`` operates everything. An operator changes any rule with a policy
file (``ephyra serve --policy-file``, YAML, oslo.policy's format).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy

from ephyra.errors import UsageError

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
    "host:list": ("rule:reader", "list compute hosts and their maintenance state"),
    "host:maintenance": ("rule:admin", "put a compute host in or out of maintenance"),
    "host:evacuate": ("rule:admin", "empty compute hosts by live migration"),
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
    def __init__(self, policy_file: str | None = None) -> None:
        if policy_file and not Path(policy_file).is_file():
            raise UsageError(f"no policy file {policy_file}")
        conf = cfg.ConfigOpts()
        conf([], project="ephyra", default_config_files=[], default_config_dirs=[])
        self._enforcer = policy.Enforcer(
            conf, policy_file=policy_file, use_conf=True, overwrite=False
        )
        self._enforcer.register_defaults(BASE)
        self._enforcer.register_defaults(
            [
                policy.RuleDefault(f"ephyra:{name}", rule, text)
                for name, (rule, text) in ACTIONS.items()
            ]
        )
        if policy_file:
            self._enforcer.load_rules()
        self._decided: dict[tuple[str, str, str, tuple[str, ...]], bool] = {}

    def allows(self, action: str, who: Identity) -> bool:
        """Whether ``who`` may do ``action``; rules see only the caller's user, project
        and roles (no target), so each decision is kept for those."""
        key = (action, who.user, who.project, who.roles)
        found = self._decided.get(key)
        if found is None:
            if action not in ACTIONS:
                raise KeyError(f"no policy rule for {action!r}")
            found = bool(self._enforcer.enforce(f"ephyra:{action}", {}, who.creds()))
            self._decided[key] = found
        return found

    def allowed(self, who: Identity) -> dict[str, bool]:
        return {action: self.allows(action, who) for action in ACTIONS}
