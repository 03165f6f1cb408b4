#!/usr/bin/env bash
# Sets up lfm25-kernels for development in the current Python environment: PyTorch (if missing), then the
# package itself (compiled extension, editable) with its test and bench extras.
#   LFM25_CUDA=AUTO|ON|OFF        build the CUDA kernels (AUTO: when nvcc is found)
#   LFM25_CUDA_ARCHITECTURES="90" CUDA architectures (default "80;90")
#   LFM25_TORCH="torch==2.13.0"   the PyTorch to install when none is importable
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "setup: installing ${LFM25_TORCH:-torch==2.13.0}"
  "$PYTHON" -m pip install -q "${LFM25_TORCH:-torch==2.13.0}"
fi

# nvcc is often installed but not on PATH
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

echo "setup: building lfm25-kernels (CUDA ${LFM25_CUDA:-AUTO})"
"$PYTHON" -m pip install -q --upgrade-strategy only-if-needed -e ".[test,bench]"
"$PYTHON" -c "import lfm25_kernels as L; print('setup: lfm25_kernels', L.__version__, '| CPU ISAs', L.available_isas(), '| CUDA kernels', L._C.with_cuda)"
