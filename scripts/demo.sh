#!/usr/bin/env bash
# The demo: installs what it needs, starts two local Ironic control planes, enrolls
# deployed fake-hardware nodes in cp1 and forklifts them to cp2 with progress shown.
# Options: --nodes N (24), --concurrency N (4), --rollback (move them back afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m testbed.demo "$@"
