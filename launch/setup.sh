#!/usr/bin/env bash
# Installs the Debian packages ocm needs (only those missing; apt-get update only then) and builds
# ocm into build/ (or $OCM_BUILD_DIR). Safe to rerun: a second run installs nothing and rebuilds
# only what changed. Extra CMake arguments: OCM_CMAKE_ARGS="-DOCM_WITH_NCCL=OFF ...".
# OCM_WITH_TEST_TOOLS=1 adds what the tests need besides (Debian's PyTorch for the reference side).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libhdf5-dev libyaml-cpp-dev libspdlog-dev libcli11-dev libminizip-dev libstb-dev nlohmann-json3-dev
  fonts-dejavu-core
  zlib1g-dev
  libgtest-dev
  dataset-fashion-mnist
)
# The tests also check the networks and the importer against PyTorch (tests/reference/), and
# fuzz the readers with clang's libFuzzer (fuzz/).
if [[ ${OCM_WITH_TEST_TOOLS:-0} == 1 ]]; then
  packages+=(python3-torch python3-numpy clang libclang-rt-dev)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
      echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
      echo "setup: run 'apt-get install ${missing[*]}' as root, then rerun this script." >&2
      exit 1
    fi
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build_dir=${OCM_BUILD_DIR:-build}
# shellcheck disable=SC2086  # OCM_CMAKE_ARGS is a list of arguments
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${OCM_CMAKE_ARGS:-} >/dev/null
# OCM_BUILD_TARGETS: only these targets (the quickstart needs `ocm` alone; the tests add about
# twenty LibTorch translation units).
# shellcheck disable=SC2086  # OCM_BUILD_TARGETS is a list of targets
cmake --build "$build_dir" -j"$(nproc)" ${OCM_BUILD_TARGETS:+--target $OCM_BUILD_TARGETS}
echo "setup: built ${OCM_BUILD_TARGETS:-everything} in $build_dir"
