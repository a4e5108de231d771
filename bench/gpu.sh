#!/usr/bin/env bash
# The GPU benchmark (issue 7): one prepared run on one CUDA GPU, under 8 minutes, one JSON on stdout.
#
#   bash bench/gpu.sh [--out FILE] [options of python -m bench.gpu]
#
# PYTHON (default: .venv/bin/python when it exists, else python3) must hold a CUDA build of
# PyTorch. The project's own requirements are installed with pip only when one is missing
# (offline: set PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR to install from a folder of wheels); nothing else
# is installed. Exits 3, saying so, when no CUDA device is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench/gpu.sh: $PYTHON sees no CUDA device (or has no torch); this benchmark needs one GPU" \
         "and a CUDA build of PyTorch. 'python -m bench.gpu --dry-run' checks the script on a CPU." >&2
    exit 3
fi
if ! "$PYTHON" -c 'import galexplore.training.trainer, galexplore.maps.neighbors, h5py, scipy' 2>/dev/null; then
    echo "bench/gpu.sh: installing the project's requirements into $PYTHON" >&2
    "$PYTHON" -m pip install --quiet -e .
fi
export PYTHONUNBUFFERED=1
exec timeout 480 "$PYTHON" -m bench.gpu "$@"
