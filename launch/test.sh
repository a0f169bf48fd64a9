#!/usr/bin/env bash
# Sets up (launch/setup.sh) and runs every test: unit, MPI (mpirun -np 2) and end-to-end.
# Pass ctest arguments through, e.g. `launch/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash launch/setup.sh
ctest --test-dir "${OCM_BUILD_DIR:-build}" --output-on-failure "$@"
