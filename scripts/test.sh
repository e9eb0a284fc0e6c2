#!/usr/bin/env bash
# Set up, then run the whole test suite (slow and browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The viewer's tests drive a real headless Chromium (Debian's chromium + chromium-driver).
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing chromium and chromium-driver for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
      || echo "WARNING: could not install chromium; the browser tests will be skipped"
  else
    echo "WARNING: no chromium/chromedriver and no root apt-get; the browser tests will be skipped"
  fi
fi
python3 -m pytest "$@"
