#!/usr/bin/env bash
# Runs on a Debian bookworm build machine. Assembles, from Debian's own packages, the C++
# dependencies that a GPU host with only a CUDA PyTorch install lacks (HDF5, yaml-cpp, spdlog,
# fmt, CLI11, stb, minizip, GoogleTest, nlohmann-json, zlib), unpacked into deps/gpu-prefix
# (ignored by git), small enough to copy along with the source tree. launch/gpu/build_and_test.sh
# uses it on the GPU host.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

prefix=deps/gpu-prefix
packages=(
  libhdf5-dev libhdf5-103-1 libsz2 libaec0
  libyaml-cpp-dev libyaml-cpp0.7
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libcli11-dev libstb-dev libstb0 libminizip-dev libminizip1
  libgtest-dev
  nlohmann-json3-dev zlib1g-dev zlib1g
  fonts-dejavu-core
)

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
chown _apt "$download" 2>/dev/null || true  # apt-get download writes as the _apt user where it can
(cd "$download" && apt-get download "${packages[@]}" >/dev/null)
rm -rf "$prefix"
mkdir -p "$prefix"
for deb in "$download"/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
# Only what a build and its binaries need: headers, shared and static libraries, CMake configs.
rm -rf "$prefix"/usr/share/doc "$prefix"/usr/share/man "$prefix"/usr/share/lintian "$prefix"/usr/src
# Static archives are not linked (except GoogleTest's, which ships only those).
find "$prefix" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete
# Debian's dev symlinks are absolute (/usr/lib/...); make them relative so they resolve here.
find "$prefix" -type l | while read -r link; do
  target=$(readlink "$link")
  if [[ $target == /* ]]; then
    ln -sfn "$(realpath --relative-to="$(dirname "$link")" "$prefix$target")" "$link"
  fi
done
du -sh "$prefix"
