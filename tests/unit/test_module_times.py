"""The suite's report of the time spent in each test module (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import ModuleTimes


def _report(nodeid: str, when: str, duration: float, outcome: str = "passed") -> pytest.TestReport:
    return pytest.TestReport(
        nodeid,
        (nodeid, 0, nodeid),
        {},
        outcome,
        None,
        when,
        duration=duration,
    )


def test_setup_call_and_teardown_add_up_per_module_slowest_first() -> None:
    times = ModuleTimes()
    for nodeid, durations in {
        "tests/functional/test_a.py::test_one": (20.0, 1.0, 0.5),
        "tests/functional/test_a.py::test_two[x]": (0.0, 2.0, 0.0),
        "tests/unit/test_b.py::test_three": (0.0, 30.0, 0.0),
    }.items():
        for when, duration in zip(("setup", "call", "teardown"), durations, strict=True):
            times.pytest_runtest_logreport(_report(nodeid, when, duration))
    times.pytest_runtest_logreport(_report("tests/unit/test_c.py::test_x", "setup", 1.5, "skipped"))

    assert times.lines(2) == [
        "   30.00s  54.5%    1 tests  tests/unit/test_b.py",
        "   23.50s  42.7%    2 tests  tests/functional/test_a.py",
        "   55.00s in 3 modules, the slowest 2 above",
    ]
    assert times.lines(20)[-1] == "   55.00s in 3 modules"
    assert times.tests["tests/unit/test_c.py"] == 1  # a test skipped at its setup counts


def test_a_run_of_nothing_but_instant_tests_reports_zeros() -> None:
    times = ModuleTimes()
    times.pytest_runtest_logreport(_report("tests/unit/test_d.py::test_y", "call", 0.0))
    assert times.lines(20) == [
        "    0.00s   0.0%    1 tests  tests/unit/test_d.py",
        "    0.00s in 1 modules",
    ]
