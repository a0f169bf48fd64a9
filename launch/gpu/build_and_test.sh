#!/usr/bin/env bash
# Runs on a GPU host that has a CUDA PyTorch install (python3 -c 'import torch') but none of our
# other C++ dependencies: uses deps/gpu-prefix from launch/gpu/make_prefix.sh, LibTorch from
# inside PyTorch and NCCL from the nvidia-nccl wheel (or NCCL_ROOT). With one GPU there is one
# rank, so it builds without MPI (an NCCL world of one). Builds `ocm`, the GPU tests and the
# step benchmark with CUDA and NCCL, runs the tests, then the GPU training benchmark beside the
# same step in PyTorch on the same GPU, and writes every figure, with the GPU's name, into the
# output folder (first argument, default gpu-results/): host.txt, build.log, cuda_test.log,
# bench.jsonl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

out=$(realpath -m "${1:-gpu-results}")
mkdir -p "$out"
prefix=$PWD/deps/gpu-prefix/usr
if [[ ! -d $prefix ]]; then
  echo "gpu: $prefix is missing; run launch/gpu/make_prefix.sh on a Debian machine and copy it here" >&2
  exit 2
fi
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
if [[ -z ${NCCL_ROOT:-} ]]; then
  NCCL_ROOT=$(python3 -c 'import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)
  export NCCL_ROOT
fi
libs=$prefix/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$libs:$libs/hdf5/serial${NCCL_ROOT:+:$NCCL_ROOT/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

{
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
  echo "torch: $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)')"
  echo "nccl root: ${NCCL_ROOT:-none}"
  echo "cmake: $(cmake --version | head -1)"
  echo "compiler: $(c++ --version | head -1)"
  echo "cores: $(nproc)"
} | tee "$out/host.txt"

start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix;$torch_prefix" -DHDF5_ROOT="$libs/hdf5/serial" \
  -DZLIB_ROOT="$prefix" -DTORCH_CUDA_ARCH_LIST=9.0 \
  -DOCM_WITH_CUDA=ON -DOCM_WITH_NCCL=ON -DOCM_WITH_MPI=OFF >"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; exit 1; }
# Only what runs here: the CLI (with `ocm bench`), the GPU tests and the step benchmark.
cmake --build build-gpu -j"$(nproc)" --target ocm cuda_test ocm_bench_diffusion >>"$out/build.log" 2>&1 ||
  { grep -B2 -A12 "error" "$out/build.log" | head -80; exit 1; }
echo "build seconds: $(($(date +%s) - start))" | tee -a "$out/host.txt"
grep "ocm 0" "$out/build.log" | tee -a "$out/host.txt" || true
ldd build-gpu/apps/ocm | grep "not found" | tee -a "$out/host.txt" || true
build-gpu/apps/ocm --version | tee -a "$out/host.txt"

status=0
build-gpu/tests/cuda_test 2>&1 | tee "$out/cuda_test.log" || status=1

# A CIFAR-10-shaped dataset of random pixels (the benchmark times the step, not the learning).
data=$(mktemp -d)
python3 - "$data/source" <<'EOF'
import os, sys
import numpy as np
os.makedirs(sys.argv[1])
rng = np.random.default_rng(0)
for name, count in [(f"data_batch_{i}.bin", 2000) for i in range(1, 6)] + [("test_batch.bin", 500)]:
    records = rng.integers(0, 256, size=(count, 3073), dtype=np.uint8)
    records[:, 0] %= 10
    records.tofile(os.path.join(sys.argv[1], name))
EOF
build-gpu/apps/ocm data prepare cifar10 --source "$data/source" --out "$data/cifar" >/dev/null

# Side by side, alternating (the GPU's clocks and the host are shared). ocm's step includes its
# data loader and per-sample noise; PyTorch draws its noise on the GPU.
bench() {  # precision channels_last batch
  local flag=""
  [[ $2 == true ]] && flag=--channels-last
  build-gpu/apps/ocm bench train --config configs/cifar10.yaml --batch "$3" --steps 30 --warmup 5 \
    --set data.path="$data/cifar" --set dist.device=cuda --set dist.precision="$1" \
    --set dist.channels_last="$2" | tee -a "$out/bench.jsonl" || status=1
  build-gpu/apps/ocm config show configs/cifar10.yaml |
    python3 bench/pytorch_reference.py --shape 3 32 32 --batch "$3" --steps 30 --warmup 5 \
      --device cuda --precision "$1" $flag | tee -a "$out/bench.jsonl" || status=1
}
bench bf16 true 128
bench fp32 false 128
bench bf16 true 128
bench fp32 false 128
# A larger batch: how much of the step at 128 is per-kernel overhead rather than arithmetic.
bench bf16 true 512
# The OCM step against the score step, and sampling steps, in fp32 (bench/README.md).
build-gpu/bench/ocm_bench_diffusion --device cuda --config configs/cifar10.yaml --shape 3 32 32 \
  --batch 128 --iterations 20 | tee -a "$out/bench.jsonl" || status=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee -a "$out/host.txt"
rm -rf "$data"
exit $status
