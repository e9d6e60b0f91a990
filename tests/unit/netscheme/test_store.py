"""The store of environments."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ephyra.errors import EnvironmentNotFound, UsageError
from ephyra.netscheme.lifecycle import node_status, upgrade
from ephyra.netscheme.model import Environment
from ephyra.netscheme.store import Environments
from tests.unit.netscheme.sample import env


def test_the_store_keeps_environments_and_refuses_clashes() -> None:
    store = Environments(sa.create_engine("sqlite://"))
    assert store.put(env()) is True
    with pytest.raises(UsageError, match="--replace"):
        store.put(env())
    assert store.put(env(), replace=True) is False
    changed = store.change("env1", upgrade(2))
    assert store.get("1") == changed and store.get("env1").status == "upgrade"
    with pytest.raises(EnvironmentNotFound):
        store.get("env2")


def test_a_change_made_meanwhile_is_not_lost() -> None:
    store = Environments(sa.create_engine("sqlite://"))
    store.put(env())

    def racing(e: Environment) -> Environment:
        if e.status == "operational":  # another caller changes it between read and write
            store.change("env1", upgrade(2))
        return node_status(["ctl-2"], "detached")(e)

    done = store.change("env1", racing)
    assert done.status == "upgrade" and done.node("ctl-2").status == "detached"
