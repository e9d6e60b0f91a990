#!/bin/bash
# Installs the target release of demo: writes TARGET_RELEASE into $DEMO_STATE/release.
set -o errexit
echo "upgrade demo $BASE_RELEASE->$TARGET_RELEASE TOP_DIR=$TOP_DIR" >> "$DEMO_STATE/log"
if [[ "${DEMO_FAIL:-}" == upgrade ]]; then
    echo "demo: database migration to $TARGET_RELEASE failed" >&2
    exit 1
fi
if [[ "${DEMO_FAIL:-}" != no-write ]]; then
    echo "$TARGET_RELEASE" > "$DEMO_STATE/release"
fi
echo "demo upgraded to $TARGET_RELEASE"
