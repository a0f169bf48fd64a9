#!/usr/bin/env bash
# Score-phase training images/s of one rank: `ocm bench train` against the same network, batch,
# loss and optimizer in PyTorch from Python (Debian's python3-torch, the same LibTorch build),
# alternating the two `rounds` times on the same machine. Prints each JSON line, then a summary.
#   bench/train_vs_pytorch.sh [CONFIG] [BATCH] [THREADS] [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
config=${1:-configs/fashion_mnist.yaml}
batch=${2:-32}
threads=${3:-1}
rounds=${4:-3}
steps=${5:-8}
ocm=${OCM_BINARY:-build/apps/ocm}
if ! /usr/bin/python3 -c 'import torch, yaml' 2>/dev/null; then
  echo "train_vs_pytorch: needs Debian's python3-torch (apt-get install python3-torch)" >&2
  exit 1
fi
ours=() theirs=()
for _ in $(seq "$rounds"); do
  line=$("$ocm" bench train --config "$config" --batch "$batch" --threads "$threads" \
    --steps "$steps" --warmup 2)
  echo "$line"
  ours+=("$line")
  shape=$(echo "$line" | /usr/bin/python3 -c 'import json,sys; print(*json.load(sys.stdin)["sample_shape"])')
  line=$("$ocm" config show "$config" |
    /usr/bin/python3 bench/pytorch_reference.py --shape $shape --batch "$batch" --threads "$threads" \
      --steps "$steps" --warmup 2)
  echo "$line"
  theirs+=("$line")
done
printf '%s\n' "${ours[@]}" "${theirs[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
lines = [json.loads(l) for l in sys.stdin]
ours = [l for l in lines if l["bench"] == "train"]
theirs = [l for l in lines if l["bench"] == "pytorch_reference"]
assert ours[0]["parameters"] == theirs[0]["parameters"], "the two networks differ"
a = statistics.median(l["img_per_s"] for l in ours)
b = statistics.median(l["img_per_s"] for l in theirs)
print(json.dumps({"bench": "train_vs_pytorch", "parameters": ours[0]["parameters"],
                  "ocm_img_per_s": a, "pytorch_img_per_s": b, "ratio": a / b}))'
