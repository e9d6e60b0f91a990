"""The API's policy, rule by rule: what each role may do, and a policy file's override."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephyra.api.policy import ACTIONS, Identity, Policy
from ephyra.errors import UsageError

READS = {"run:list", "host:list", "inventory:show", "version:read", "env:read", "metrics:read"}
MEMBER = READS | {"run:plan", "run:pause", "run:resume"}
EXPECTED = {
    "reader": READS,
    "member": MEMBER,
    "admin": set(ACTIONS),
    "observer": set(),  # a role the policy does not know grants nothing
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_each_rule_for_each_role(action: str, role: str) -> None:
    allowed = Policy().allows(action, Identity("u", "p", (role,)))
    assert allowed == (action in EXPECTED[role])


def test_no_role_no_right() -> None:
    assert not any(Policy().allowed(Identity("u", "p", ())).values())


def test_a_policy_file_changes_one_rule_only(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"ephyra:run:start": "rule:member"\n')
    policy = Policy(str(path))
    member = Identity("u", "p", ("member",))
    assert policy.allows("run:start", member)
    assert not policy.allows("run:abort", member)
    assert not policy.allows("run:start", Identity("u", "p", ("reader",)))


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no policy file"):
        Policy(str(tmp_path / "nope.yaml"))


def test_an_unknown_action_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(KeyError):
        Policy().allows("run:explode", Identity("u", "p", ("admin",)))
