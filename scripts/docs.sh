#!/usr/bin/env bash
# Install the docs extra, then build the documentation site strictly (any warning fails) into build/site.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[docs]"
NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict -d build/site "$@"
