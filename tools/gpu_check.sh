#!/usr/bin/env bash
# One call on a lent GPU machine (no network): build with CUDA for the local GPU, run the test suite on the GPU,
# compute-sanitizer (memcheck, racecheck) over the CUDA tests, and the benchmark suite; logs and results go to
# ${OUT:-gpu-check}/. Usage (device tool): bash tools/gpu_check.sh
set -uo pipefail
out="${OUT:-gpu-check}"
mkdir -p "$out"
arch=$(python3 -c "import torch; m, n = torch.cuda.get_device_capability(); print(f'{m}{n}')")
export LFM25_CUDA=ON LFM25_CUDA_ARCHITECTURES="$arch" CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
nvidia-smi | tee "$out/nvidia-smi.txt"
python3 -m pip install --no-build-isolation --no-deps -e . 2>&1 | tail -3 | tee "$out/build.log"
python3 -m pytest -q -x tests -k "cuda" 2>&1 | tee "$out/pytest-cuda.log" | tail -15
for tool in memcheck racecheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 1 python3 -m pytest -q -x tests/test_cuda.py \
    tests/test_short_conv.py tests/test_attention.py tests/test_rms_norm.py -k cuda -p no:cacheprovider \
    2>&1 | tee "$out/sanitizer-$tool.log" | tail -5
done
python3 -m bench --device cuda --results-dir "$out" 2>&1 | tee "$out/bench.log" | tail -40
