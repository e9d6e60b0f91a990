"""Retries with jittered exponential backoff, bounded."""

from __future__ import annotations

import pytest

from ephyra.notifiers.base import Backoff


def test_each_wait_is_drawn_between_half_and_all_of_its_doubling_ceiling() -> None:
    backoff = Backoff(attempts=6, first=0.5, most=3.0)
    bounds = [backoff.delay(n, lambda low, high: (low, high)) for n in range(5)]  # type: ignore[arg-type,return-value]
    assert bounds == [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (1.5, 3.0), (1.5, 3.0)]
    for n in range(5):
        assert 0.5 * min(3.0, 0.5 * 2**n) <= backoff.delay(n) <= min(3.0, 0.5 * 2**n)


def test_retried_until_it_works_sleeping_between_tries() -> None:
    tries: list[int] = []
    slept: list[float] = []

    def attempt() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("down")

    Backoff(attempts=5, first=1.0, most=8.0).run(attempt, lambda e: True, slept.append)
    assert len(tries) == 3
    assert len(slept) == 2 and 0.5 <= slept[0] <= 1.0 and 1.0 <= slept[1] <= 2.0


def test_bounded_the_last_error_is_raised() -> None:
    tries: list[int] = []

    def attempt() -> None:
        tries.append(1)
        raise ConnectionError(f"down {len(tries)}")

    with pytest.raises(ConnectionError, match="down 4"):
        Backoff(attempts=4).run(attempt, lambda e: True, lambda s: None)
    assert len(tries) == 4


def test_a_final_error_is_not_retried() -> None:
    tries: list[int] = []

    def attempt() -> None:
        tries.append(1)
        raise ValueError("refused")

    with pytest.raises(ValueError):
        Backoff(attempts=4).run(attempt, lambda e: isinstance(e, ConnectionError), lambda s: 0)
    assert len(tries) == 1
