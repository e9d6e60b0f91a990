"""The API's error codes both ways."""

from __future__ import annotations

import pytest

from ephyra.errors import EphyraError, LockHeld, RunNotFound, UsageError
from ephyra.operations.codes import CODES, classify, raise_for


@pytest.mark.parametrize(("cls", "status", "code"), CODES)
def test_every_error_code_comes_back_as_its_error(
    cls: type[EphyraError], status: int, code: str
) -> None:
    assert classify(cls("x")) == (status, code)
    with pytest.raises(cls) as raised:
        raise_for(status, (code, "what to do"))
    assert str(raised.value) == "what to do"


def test_the_most_precise_code_wins() -> None:
    assert classify(RunNotFound("x")) == (404, "run_not_found")  # not 400 as a UsageError
    assert classify(LockHeld("x")) == (409, "lock_held")
    assert classify(ValueError("x")) == (500, "internal")
    with pytest.raises(UsageError, match="HTTP 422"):
        raise_for(422, ("invalid_request", "concurrency: must be >= 1"))
