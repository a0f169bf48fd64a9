#!/usr/bin/env bash
# Sets up (launch/setup.sh) and runs every test: unit, MPI (mpirun -np 2) and end-to-end.
# Pass ctest arguments through, e.g. `launch/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Where the CUDA toolkit ships NCCL (our build machines), the NCCL communicator must build and
# link: configuring fails instead of quietly leaving it out.
if [[ -e /usr/local/cuda/include/nccl.h ]]; then
  export OCM_CMAKE_ARGS="-DOCM_WITH_NCCL=ON ${OCM_CMAKE_ARGS:-}"
fi
OCM_WITH_TEST_TOOLS=1 bash launch/setup.sh
ctest --test-dir "${OCM_BUILD_DIR:-build}" --output-on-failure "$@"
