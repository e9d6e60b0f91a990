#!/usr/bin/env bash
# The demo: installs what it needs, starts two local Ironic control planes, enrolls
# deployed fake-hardware nodes in cp1 and forklifts them to cp2 with progress shown.
# Options: --nodes N (24), --concurrency N (4), --rollback (move them back afterwards),
# --keep (leave cp1, cp2, the journal and `ephyra serve` running to explore, and print how
# to use them), --stop (stop a kept demo and remove its state), --dir DIR (the kept demo's
# directory: $EPHYRA_DEMO_DIR, else ~/.local/state/ephyra-demo). Runs from any directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ " $* " == *" --stop "* && -x $repo/.venv/bin/python ]] || "$repo/scripts/bootstrap.sh"
export EPHYRA_DEMO_SCRIPT="$repo/scripts/demo.sh"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$repo/.venv/bin/python" -m testbed.demo "$@"
