#!/bin/bash
# Grenade resource phases of demo: verify post-upgrade checks the release file.
set -o errexit
phase=$1
side=${2:-}
echo "resources demo $phase $side" >> "$DEMO_STATE/log"
case "$phase $side" in
    "verify post-upgrade")
        found=$(cat "$DEMO_STATE/release" 2>/dev/null || echo none)
        if [[ "$found" != "$TARGET_RELEASE" ]]; then
            echo "demo: runs release $found, not $TARGET_RELEASE" >&2
            exit 1
        fi
        echo "demo verified at $TARGET_RELEASE"
        ;;
esac
