#!/usr/bin/env bash
# The whole test suite: lint, types, unit tests and functional tests against real services
# (the tests start the Ironic control planes they need), in EPHYRA_TEST_WORKERS processes
# (default 2; 0 runs them in this one). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check --no-cache src tests testbed bench
.venv/bin/ruff format --no-cache --check src tests testbed bench
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -n "${EPHYRA_TEST_WORKERS:-2}" --dist loadgroup "$@"
