#!/usr/bin/env bash
# The GPU table of benchmarks/README.md: CuPy against NumPy on one machine with a CUDA GPU.
#
#   benchmarks/gpu.sh [OUT] [bench_gpu.py options]     (OUT defaults to gpu-results)
#
# Needs CuPy and the project's dependencies on that machine.  Wheels in .whl/ (for a machine
# without a registry, e.g. array-api-compat) are installed first into /tmp/site.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu-results}"
shift || true
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation .
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 benchmarks/bench_gpu.py --out "$OUT" "$@"
