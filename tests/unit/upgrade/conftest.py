"""What the upgrade's unit tests share: the in-memory strategy in place of every plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ephyra.strategies import base
from ephyra.upgrade import runner
from tests.unit.upgrade import upgrade_fakes
from tests.unit.upgrade.upgrade_fakes import WORLD, World


@pytest.fixture
def fake_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Every strategy the in-memory one (:mod:`upgrade_fakes`), its world emptied."""
    monkeypatch.setattr(runner, "build", upgrade_fakes.build)
    monkeypatch.setattr(base, "build", upgrade_fakes.build)
    WORLD.__init__()  # type: ignore[misc]
    yield WORLD
