#!/usr/bin/env bash
# Builds ocm with AddressSanitizer + UndefinedBehaviorSanitizer into build/sanitize (or
# $OCM_SANITIZE_DIR) and runs tests there. With no argument every test runs (the full run);
# arguments are test names, and only those are built and run: `ctest -L sanitize` in the main
# build runs the short list of tests/CMakeLists.txt this way.
#
# Note [sanitizers]
# Any report ends the test that caused it (-fno-sanitize-recover, halt_on_error), so a finding is
# a failed test with the report in its output. Only ocm is instrumented: LibTorch, Open MPI and
# HDF5 come from Debian as they are, which ASan tolerates; what they allocate and keep until exit
# is not ours to fix, so LeakSanitizer skips stacks through the libraries named in
# tests/sanitize/lsan.supp. Open MPI allocates from components it loads with dlopen and unloads
# at MPI_Finalize; ASan's fast unwinder stops in those, so their stacks never reach a library
# the suppressions name. The full run therefore checks the unit and MPI tests with the slow
# unwinder, which reaches libopen-pal or libevent and triples their time. The end-to-end tests
# start many ocm processes, each of which initialises MPI; with the slow unwinder one such test
# took 100 to 200 s, so they run with the fast unwinder and without the leak check: memory
# errors and undefined behaviour still end them. The short list has no MPI test and keeps the
# fast unwinder with leaks checked. The child processes the tests start (ocm under mpirun, a
# writer killed on purpose) inherit these settings, so their reports fail the test too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir=${OCM_SANITIZE_DIR:-build/sanitize}
root=$(pwd)
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_odr_violation=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
# The instrumented tree builds with the setup's packages; it configures and builds on its own.
OCM_BUILD_DIR=$build_dir OCM_CMAKE_ARGS="-DOCM_SANITIZE=ON ${OCM_CMAKE_ARGS:-}" \
  OCM_BUILD_TARGETS="$*" OCM_WITH_TEST_TOOLS=1 bash launch/setup.sh
if (($#)); then
  ctest --test-dir "$build_dir" --output-on-failure -R "^($(IFS='|'; echo "$*"))\$"
else
  status=0
  ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" \
    ctest --test-dir "$build_dir" --output-on-failure -L "^(unit|mpi)\$" || status=$?
  ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
    ctest --test-dir "$build_dir" --output-on-failure -L "^(e2e|slurm)\$" || status=$?
  exit "$status"
fi
