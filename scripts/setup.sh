#!/usr/bin/env bash
# Install splinecam and its dependencies into the current Python (torch first, CPU build pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore torch==2.13.0
"$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[test]"
# Compile splinecam's numba kernels now (once; cached on disk beside the module), so that the
# first partition of the demo or of a notebook does not pay for it.
"$PY" -c "import torch, splinecam as sc; sc.partition(torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)), sc.Slice.box((-1, -1), (1, 1)), progress=False)"
