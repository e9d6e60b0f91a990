#!/bin/bash
# Stops the demo service of the base release.
set -o errexit
echo "shutdown demo $BASE_RELEASE TOP_DIR=$TOP_DIR" >> "$DEMO_STATE/log"
echo "demo stopped"
