#!/bin/bash
set -o errexit
echo "upgrade optional" >> "$DEMO_STATE/log"
