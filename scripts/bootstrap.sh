#!/usr/bin/env bash
# Create .venv and install Ephyra with the testbed's services and the dev tools, all pinned.
# Re-runs only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.ephyra-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "installing Ephyra and its testbed into .venv (about a minute the first time)" >&2
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[testbed,dev]"
echo "$want" > "$stamp"
