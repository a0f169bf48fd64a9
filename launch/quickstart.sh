#!/usr/bin/env bash
# The main job from a fresh machine: set up, build, and run ocm.
# For now it stops after `ocm --version`; training and evaluation join it as they land.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash launch/setup.sh
"${OCM_BUILD_DIR:-build}/apps/ocm" --version
