import threading
import time

import pytest

from ephyra.engine.control import Control, Request
from ephyra.errors import AbortRequested, PauseRequested, UsageError
from ephyra.forklift.settings import Settings


def test_checkpoint_passes_until_asked() -> None:
    control = Control()
    control.checkpoint()
    control.ask(Request.PAUSE)
    with pytest.raises(PauseRequested):
        control.checkpoint()


def test_abort_overrides_pause_but_not_the_reverse() -> None:
    control = Control()
    control.ask(Request.PAUSE)
    control.ask(Request.ABORT)
    control.ask(Request.PAUSE)
    assert control.request is Request.ABORT
    with pytest.raises(AbortRequested):
        control.checkpoint()


def test_sleep_wakes_on_a_request() -> None:
    control = Control()
    threading.Timer(0.05, control.ask, (Request.PAUSE,)).start()
    started = time.monotonic()
    with pytest.raises(PauseRequested):
        control.sleep(10)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "--concurrency must be at least 1"),
        ({"max_failures": -1}, "cannot be negative"),
        ({"gate_timeout": 0}, "--gate-timeout must be positive"),
    ],
)
def test_bad_settings_are_usage_errors(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_settings_round_trip_and_batch_default() -> None:
    settings = Settings(concurrency=8, workload="command", workload_options={"prepare": "true"})
    assert settings.batch == 8
    assert Settings.from_meta(settings.to_meta()) == settings
