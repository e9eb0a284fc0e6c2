#!/usr/bin/env bash
# Set up, then run the demo: writes demo-output/partition.png, partition.html (the viewer) and stats.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
splinecam demo --out demo-output "$@"
