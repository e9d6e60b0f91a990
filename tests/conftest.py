"""Suite-wide: a summary section where tests report what they measured."""

from __future__ import annotations

import pytest

REPORT = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORT] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> list[str]:
    """Lines a test adds here are printed at the end of the run."""
    return request.config.stash[REPORT]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(REPORT, [])
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
