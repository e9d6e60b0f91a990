#!/bin/bash
set -o errexit
echo "shutdown extra" >> "$DEMO_STATE/log"
