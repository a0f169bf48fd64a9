# Sourced by the scripts in launch/gpu/ on a GPU host that has a CUDA PyTorch install
# (python3 -c 'import torch') but none of our other C++ dependencies: they come from
# deps/gpu-prefix (launch/gpu/make_prefix.sh), LibTorch from inside PyTorch and NCCL from the
# nvidia-nccl wheel (or NCCL_ROOT). With one GPU there is one rank, so the build has no MPI (an
# NCCL world of one). Defines gpu_build OUT TARGET... and writes OUT/host.txt.

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

gpu_build() {  # out target...
  local out=$1
  shift
  {
    echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
    echo "torch: $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)')"
    echo "nccl root: ${NCCL_ROOT:-none}"
    echo "cmake: $(cmake --version | head -1)"
    echo "compiler: $(c++ --version | head -1)"
    echo "cores: $(nproc)"
  } | tee "$out/host.txt"
  local start
  start=$(date +%s)
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix;$torch_prefix" -DHDF5_ROOT="$libs/hdf5/serial" \
    -DZLIB_ROOT="$prefix" -DTORCH_CUDA_ARCH_LIST=9.0 -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DOCM_FONT_FILE="$prefix/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf" \
    -DOCM_WITH_CUDA=ON -DOCM_WITH_NCCL=ON -DOCM_WITH_MPI=OFF >"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log"; exit 1; }
  cmake --build build-gpu -j"$(nproc)" --target "$@" >>"$out/build.log" 2>&1 ||
    { grep -B2 -A12 "error" "$out/build.log" | head -80; exit 1; }
  echo "build seconds: $(($(date +%s) - start))" | tee -a "$out/host.txt"
  ldd build-gpu/apps/ocm | grep "not found" | tee -a "$out/host.txt" || true
  build-gpu/apps/ocm --version | tee -a "$out/host.txt"
}
