#!/usr/bin/env bash
# Builds the fuzz harnesses with clang and runs each for a fixed time:
#   fuzz/run.sh [SECONDS_EACH] [HARNESS ...]     (default 600 s each, every harness)
# The tests run it for 15 s each (the `fuzz` label); the long run is the default.
#
# Note [fuzzing]
# Each harness (fuzz/<name>_fuzz.cpp) hands libFuzzer's bytes to one reader of outside input.
# The readers are compiled here again with AddressSanitizer and UndefinedBehaviorSanitizer and
# nothing recovers, so a memory error, undefined behaviour, a hang past 10 s, more than 2 GB of
# memory, or any exception other than UserError (fuzz/user_errors_only.h) stops the run with
# the input saved under crashes/. The seeds are fuzz/corpus/<name>/ (plus configs/*.yaml for
# the config reader); what libFuzzer finds beyond them is kept in the build folder's corpus/,
# so each run starts where the last one stopped. A crash found becomes a case of the unit tests
# and its input a seed. Two things of Debian's libhdf5 1.10, which we do not build, are let
# through: the memory it loses on the error paths of damaged files (fuzz/lsan.supp) and the
# NULL it is given for an absurd allocation, as it would be outside the sanitizer. Checkpoints
# stand behind their manifest's SHA-256, so a damaged one never reaches HDF5; statistics and
# dataset shards a user hands us do. The summary (one JSON object per harness: executions, coverage edges,
# features, corpus size, crash file) is printed and written to summary.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-600}
shift || true
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(config manifest npy npz idx cifar checkpoint_manifest statistics hdf5)
dir=${OCM_FUZZ_DIR:-build/fuzz}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is missing; install clang and libclang-rt-dev (launch/setup.sh does with" \
    "OCM_WITH_TEST_TOOLS=1)" >&2
  exit 1
fi
cmake -S fuzz -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null

# A request for an absurd size gets NULL, as glibc's malloc gives it outside the sanitizer (HDF5
# then refuses the file); our own code would throw bad_alloc, which counts as a crash.
export ASAN_OPTIONS=allocator_may_return_null=1
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp"
# Runs harness $1 for $seconds; leaves its summary line in $dir/$1.json, its exit status in
# $dir/$1.status.
fuzz_one() {
  local name=$1 status=0
  local seeds=(fuzz/corpus/"$name")
  [[ $name == config ]] && seeds+=(configs)
  mkdir -p "$dir/corpus/$name" "$dir/crashes"
  local log="$dir/$name.log"
  "$dir/fuzz_$name" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$dir/crashes/$name-" \
    "$dir/corpus/$name" "${seeds[@]}" >"$log" 2>&1 || status=$?
  local executions coverage features crash corpus
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
  features=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
  crash=$(grep -o "$dir/crashes/$name-[^ ]*" "$log" | tail -1 || true)
  corpus=$(find "$dir/corpus/$name" -type f | wc -l)
  printf '{"harness": "%s", "seconds": %s, "executions": %s, "coverage": %s, "features": %s, "corpus": %s, "exit": %s, "crash": "%s"}\n' \
    "$name" "$seconds" "${executions:-0}" "${coverage:-0}" "${features:-0}" "$corpus" "$status" \
    "$crash" >"$dir/$name.json"
  echo "$status" >"$dir/$name.status"
}

# Each harness runs on one core, so as many run at once as there are cores: every one still
# gets its full time, and the short run of the tests takes half as long on two cores.
for name in "${harnesses[@]}"; do
  while (($(jobs -rp | wc -l) >= $(nproc))); do wait -n || true; done
  fuzz_one "$name" &
done
wait
failed=0
summary=()
for name in "${harnesses[@]}"; do
  line=$(cat "$dir/$name.json")
  status=$(cat "$dir/$name.status")
  echo "$line"
  summary+=("$line")
  if ((status != 0)); then
    failed=1
    echo "fuzz: $name stopped with status $status; its output: $dir/$name.log" >&2
    grep -m 5 -E 'ERROR|runtime error|terminate called|what\(\)' "$dir/$name.log" >&2 || true
  fi
done
(IFS=,; echo "[${summary[*]}]") >"$dir/summary.json"
exit "$failed"
