#!/usr/bin/env bash
# Trains configs/fashion_mnist_long.yaml on one GPU host (launch/gpu/env.sh says what it needs)
# inside a wall-clock budget, then evaluates it there. Usage:
#   train_long.sh OUT [SECONDS [--set KEY=VALUE ...]]
# SECONDS (default 540) includes the build; each --set overrides a config key, in the timing run
# too (a larger phases.score.batch_size, say, with its own run.dir). Needs the Fashion-MNIST IDX files in deps/fashion-mnist
# (or FASHION_MNIST_SOURCE) and the FD classifier in runs/fashion_classifier.
#
# It first times 300 score and 150 OCM steps, then sizes the run to what is left after a reserve
# for the evaluation: up to 3000 OCM steps, the rest score steps (in thousands). Writes to OUT:
# host.txt, build.log, train.log, eval.log (FD, DDPM and DDIM at K = 5, 10 for seeds 0 and 1,
# n = 10,000), covariance.txt (`ocm covariance`, K = 5) and run.tar (the run directory with its
# newest checkpoint only), so that the rest of the evaluation can run on a CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

out=$(realpath -m "${1:-gpu-results}")
budget=${2:-540}
overrides=("${@:3}")
start=$SECONDS
mkdir -p "$out"
source launch/gpu/env.sh
gpu_build "$out" ocm
ocm=build-gpu/apps/ocm
left() { echo $((budget - (SECONDS - start))); }

"$ocm" data prepare fashion-mnist --source "${FASHION_MNIST_SOURCE:-deps/fashion-mnist}" \
  --out datasets/fashion_mnist >/dev/null
config=configs/fashion_mnist_long.yaml
run=$("$ocm" config show "$config" "${overrides[@]}" | awk '$1 == "dir:" { gsub(/"/, "", $2); print $2; exit }')

probe=$(mktemp -d)
"$ocm" train "$config" "${overrides[@]}" --set run.dir="$probe" --set phases.score.steps=300 \
  --set phases.ocm.steps=150 --set log.every=50 --set checkpoint.every=1000 >"$out/train.log" 2>&1
eval_reserve=${EVAL_RESERVE:-170}
read -r score_steps ocm_steps < <(python3 - "$probe/metrics.jsonl" "$(($(left) - eval_reserve))" <<'PY'
import json, statistics, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
def step_ms(phase):  # the first interval of a phase holds its warm-up
    return statistics.median(l["step_ms"] for l in [l for l in lines if l["phase"] == phase][1:])
score_ms, ocm_ms = step_ms("score"), step_ms("ocm")
seconds = float(sys.argv[2])
ocm = min(3000, int(0.25 * seconds * 1000 / ocm_ms))
score = max(1000, min(100000, int((seconds * 1000 - ocm * ocm_ms) / score_ms) // 1000 * 1000))
print(f"step_ms score {score_ms:.2f} ocm {ocm_ms:.2f}; {seconds:.0f} s -> {score} + {ocm} steps",
      file=sys.stderr)
print(score, ocm)
PY
)
rm -rf "$probe"
echo "training $score_steps score + $ocm_steps OCM steps, $(left) s left" | tee -a "$out/host.txt"
# SIGTERM stops training after a checkpoint (exit 3), which still leaves a run to evaluate.
timeout $(($(left) - 60)) "$ocm" train "$config" "${overrides[@]}" --set phases.score.steps="$score_steps" \
  --set phases.ocm.steps="$ocm_steps" >>"$out/train.log" 2>&1 || echo "train exited with $?" | tee -a "$out/host.txt"
tail -3 "$run/metrics.jsonl"

pack() {
  local newest
  newest=$(cat "$run/checkpoints/latest")
  tar -cf "$out/run.tar" --exclude='ckpt-*' "$run"
  tar -rf "$out/run.tar" "$run/checkpoints/$newest" "$run/checkpoints/${newest%.h5}.json"
}
pack
evaluate() {  # seed sampler...
  local seed=$1
  shift
  timeout $(($(left) - 25)) "$ocm" eval "$run" --steps 5,10 --sampler "$@" \
    --cov fixed-small,analytic,ocm --metric fd --features runs/fashion_classifier \
    --num-samples 10000 --batch 1000 --seed "$seed" >>"$out/eval.log" 2>&1 ||
    echo "eval (seed $seed) exited with $?" | tee -a "$out/host.txt"
}
evaluate 0 ddpm ddim
timeout $(($(left) - 20)) "$ocm" covariance "$run" --steps 5 -n 512 --probes 16 --batch 256 \
  >"$out/covariance.txt" 2>&1 || echo "covariance exited with $?" | tee -a "$out/host.txt"
evaluate 1 ddim
pack
grep -h '"setting"' "$run/eval/results.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(r["setting"], r.get("seed", ""), round(r["value"], 3), r["n"])' || true
echo "done with $(left) s of the budget left" | tee -a "$out/host.txt"
