#!/bin/bash
set -o errexit
echo "upgrade extra $UPGRADE_PROJECTS" >> "$DEMO_STATE/log"
