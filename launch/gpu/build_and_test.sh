#!/usr/bin/env bash
# Runs on a GPU host that has a CUDA PyTorch install (python3 -c 'import torch') but none of our
# other C++ dependencies: uses deps/gpu-prefix from launch/gpu/make_prefix.sh, LibTorch from
# inside PyTorch and NCCL from the nvidia-nccl wheel (or NCCL_ROOT). Builds with CUDA and NCCL,
# runs the tests that need no MPI, then the GPU benchmarks, and writes every figure, with the
# GPU's name, into the output folder (first argument, default gpu-results/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

out=${1:-gpu-results}
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
} | tee "$out/host.txt"

start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix;$torch_prefix" -DHDF5_ROOT="$libs/hdf5/serial" \
  -DZLIB_ROOT="$prefix" \
  -DOCM_WITH_CUDA=ON -DOCM_WITH_NCCL=ON -DOCM_WITH_MPI=AUTO 2>&1 | tee "$out/configure.log" | tail -3
cmake --build build-gpu -j"$(nproc)" 2>&1 | tee "$out/build.log" | tail -3
echo "build seconds: $(($(date +%s) - start))" | tee -a "$out/host.txt"
ldd build-gpu/apps/ocm | grep "not found" | tee -a "$out/host.txt" || true

build-gpu/apps/ocm --version | tee "$out/version.txt"
ctest --test-dir build-gpu --output-on-failure -LE mpi 2>&1 | tee "$out/ctest.log" | tail -15

build-gpu/bench/ocm_bench_diffusion --device cuda --config configs/cifar10.yaml --shape 3 32 32 \
  --batch 128 --iterations 20 | tee "$out/bench_diffusion_cuda.jsonl"
