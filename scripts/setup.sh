#!/usr/bin/env bash
# Sets up lfm25-kernels for development in the current Python environment: PyTorch (if missing), the build
# tools, then the package itself (compiled extension, editable) with its test and bench extras.
#   LFM25_CUDA=AUTO|ON|OFF        build the CUDA kernels (AUTO: where nvcc and an NVIDIA GPU are both found;
#                                 ON: wherever nvcc is, a GPU or not)
#   LFM25_CUDA_ARCHITECTURES="90" CUDA architectures (default "80;90")
#   LFM25_TORCH="torch==2.13.0"   the PyTorch to install when none is importable
# A rerun recompiles only what changed: the build runs in this environment, not in one of pip's isolated
# ones (scikit-build-core starts a build over in each new one), and each Python environment has its own
# build folder, build/setup-<python>-<hash of its prefix>, so installing into a second one keeps the first.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "setup: installing ${LFM25_TORCH:-torch==2.13.0} (a large download)"
  "$PYTHON" -m pip install "${LFM25_TORCH:-torch==2.13.0}"
fi

# nvcc is often installed but not on PATH
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

echo "setup: build tools (pyproject.toml's build-system requires, and cmake/ninja where missing)"
"$PYTHON" -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12"
tools=$("$PYTHON" -c "from scikit_build_core.build import get_requires_for_build_editable as r; print(*r())")
if [ -n "$tools" ]; then "$PYTHON" -m pip install -q $tools; fi

build=build/setup-$("$PYTHON" -c "import hashlib, sys; print(sys.implementation.cache_tag + '-' + \
hashlib.sha1(sys.prefix.encode()).hexdigest()[:8])")
mkdir -p "$build"
log=$build/setup.log
echo "setup: building lfm25-kernels in $build (LFM25_CUDA=${LFM25_CUDA:-AUTO}; full log: $log)"
echo "setup: a first build takes about 2-5 min for the CPU kernels on 2 idle cores (under 1 GB of memory), 5-10 min"
echo "       more with the CUDA kernels; a rerun recompiles only what changed"
# the build's progress ([n/total] per file) and CUDA decision; everything in the log
if ! "$PYTHON" -m pip install -v --no-build-isolation --upgrade-strategy only-if-needed \
    -C build-dir="$build" -e ".[test,bench]" 2>&1 | tee "$log" \
    | { grep --line-buffered -E '^ *\[[0-9]+/[0-9]+\] |lfm25: |^ERROR|error:' || true; } \
    | sed -u -E 's#^ *(\[[0-9]+/[0-9]+\]) Building (CXX|CUDA) object CMakeFiles/[^/]+\.dir/(.*)\.o$#  \1 \3 (\2)#'; then
  echo "setup: the build failed; the last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
"$PYTHON" -c "import lfm25_kernels as L; print('setup: lfm25_kernels', L.__version__, '| CPU ISAs', \
L.available_isas(), '| CUDA kernels', L._C.with_cuda)"
echo "setup: done in $((SECONDS / 60)) min $((SECONDS % 60)) s"
