"""A flow stopped by a step that raised while the engine was suspended (a run paused
or lost mid-step) starts over on its next run: every step that was not done runs, none
is left to revert."""

from __future__ import annotations

from typing import Any

from taskflow import task
from taskflow.persistence import models
from taskflow.persistence.backends import impl_memory

from ephyra.engine.flows import engine_for, succeeded
from ephyra.errors import PauseRequested


class Step(task.Task):  # type: ignore[misc]
    def __init__(self, name: str, calls: list[str], stop: Any = None) -> None:
        super().__init__(name=name)
        self.calls = calls
        self.stop = stop

    def execute(self) -> None:
        self.calls.append(self.name)
        if self.stop is not None:
            self.stop()


def test_a_flow_cut_mid_step_runs_again_to_its_end() -> None:
    backend = impl_memory.MemoryBackend()
    book, detail = models.LogBook("run"), models.FlowDetail("flow", "flow-1")
    book.add(detail)
    backend.get_connection().save_logbook(book)
    calls: list[str] = []
    engines: list[Any] = []

    def cut() -> None:
        engines[0].suspend()
        raise PauseRequested("ended: lost the claim")

    first = engine_for(
        "f", [Step("a", calls), Step("b", calls, cut), Step("c", calls)], detail, backend
    )
    engines.append(first)
    try:
        first.run()
    except Exception as exc:
        assert "lost the claim" in str(exc)
    assert not succeeded(first)

    again = engine_for("f", [Step("a", calls), Step("b", calls), Step("c", calls)], detail, backend)
    again.run()
    assert succeeded(again)
    assert calls == ["a", "b", "a", "b", "c"]  # c, never begun, was run and not reverted
