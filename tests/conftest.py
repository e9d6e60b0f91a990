"""Suite-wide: a summary section where tests report what they measured, and the time spent
in each test module (setup, call and teardown summed: a session fixture's start counts in
the module of the first test that asked for it)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by the fixture: a run without it does not pay for the testbed
    from testbed.postgres import Postgres

#: The key of a line of the ``report`` fixture in a test's ``user_properties``.
MEASURED = "ephyra-measured"
#: How many test modules the summary names, slowest first.
MODULES_SHOWN = 20


@dataclass(eq=False)  # registered as a plugin, which must be hashable
class ModuleTimes:
    """Seconds and tests per module (the node id's file part), and the lines tests measured
    (:func:`report`), as the reports come in."""

    seconds: dict[str, float] = field(default_factory=dict)
    tests: dict[str, int] = field(default_factory=dict)
    measured: list[str] = field(default_factory=list)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = report.nodeid.partition("::")[0]
        if report.when == "teardown":
            self.measured += [str(v) for key, v in report.user_properties if key == MEASURED]
        self.seconds[module] = self.seconds.get(module, 0.0) + report.duration
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.tests[module] = self.tests.get(module, 0) + 1

    def lines(self, shown: int) -> list[str]:
        """The ``shown`` slowest modules (seconds, share of the run, tests), then the total."""
        slowest = sorted(self.seconds.items(), key=lambda item: item[1], reverse=True)
        total = sum(self.seconds.values())
        lines = [
            f"{seconds:8.2f}s {seconds / (total or 1.0):6.1%} "
            f"{self.tests.get(module, 0):4d} tests  {module}"
            for module, seconds in slowest[:shown]
        ]
        more = f", the slowest {shown} above" if len(slowest) > shown else ""
        lines.append(f"{total:8.2f}s in {len(slowest)} modules{more}")
        return lines


TIMES = pytest.StashKey[ModuleTimes]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TIMES] = ModuleTimes()
    config.pluginmanager.register(config.stash[TIMES], "ephyra-module-times")


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Lines a test adds here are printed at the end of the run. They travel in the test's
    report (its ``user_properties``), which a worker of ``pytest -n N`` sends back too."""
    lines: list[str] = []
    yield lines
    request.node.user_properties.extend((MEASURED, line) for line in lines)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    times = config.stash.get(TIMES, None)
    if times is not None and times.seconds:
        terminalreporter.section("time per test module (setup + call + teardown)")
        for line in times.lines(MODULES_SHOWN):
            terminalreporter.write_line(line)
    lines = times.measured if times is not None else []
    if lines:
        terminalreporter.section("ephyra measurements")
        for line in lines:
            terminalreporter.write_line(line)
        kills = [line for line in lines if line.startswith("crash matrix:")]
        if kills:
            survived = sum(line.endswith(": survived") for line in kills)
            terminalreporter.write_line(
                f"crash matrix: {len(kills)} kill points tried, {survived} survived"
            )


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL, once per test run: each test or module makes a database of its own
    in it (``postgres.create_databases(name)``)."""
    from testbed.postgres import Postgres

    scratch = Path(tempfile.mkdtemp(prefix="ephyra-postgres-"))
    scratch.chmod(0o755)  # PostgreSQL runs as its own user, outside pytest's private tmp
    server = Postgres(scratch / "pg", scratch / "postgres.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
