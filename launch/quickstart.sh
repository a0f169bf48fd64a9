#!/usr/bin/env bash
# The main job from a fresh machine: set up and build, then prepare Fashion-MNIST (from Debian's
# dataset-fashion-mnist) as a sharded dataset in data/fashion_mnist and verify it. Training and
# evaluation join this script as they land. Rerunning reuses what is done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash launch/setup.sh
ocm="${OCM_BUILD_DIR:-build}/apps/ocm"
"$ocm" --version
if [[ ! -f data/fashion_mnist/manifest.json ]]; then
  "$ocm" data prepare fashion-mnist --out data/fashion_mnist
fi
"$ocm" data verify data/fashion_mnist
