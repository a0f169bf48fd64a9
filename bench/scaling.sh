#!/usr/bin/env bash
# Data-parallel scaling on one machine: `ocm bench train` with the same global batch on 1 rank
# and on N ranks, one compute thread each (target: N ranks >= 0.9 N times the images/s of 1).
#   bench/scaling.sh [CONFIG] [BATCH] [RANKS] [STEPS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
config=${1:-configs/fashion_mnist.yaml}
batch=${2:-32}
ranks=${3:-2}
steps=${4:-8}
ocm=${OCM_BINARY:-build/apps/ocm}
export OMPI_MCA_rmaps_base_oversubscribe=1
if [[ $(id -u) == 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
run() {
  mpirun -np "$1" --bind-to core "$ocm" bench train --config "$config" --batch "$batch" \
    --threads 1 --steps "$steps" --warmup 2
}
one=$(run 1)
many=$(run "$ranks")
echo "$one"
echo "$many"
printf '%s\n%s\n' "$one" "$many" | python3 -c '
import json, sys
one, many = (json.loads(l) for l in sys.stdin)
print(json.dumps({"bench": "scaling", "ranks": many["world_size"],
                  "speedup": many["img_per_s"] / one["img_per_s"],
                  "allreduce_ms": many["median_allreduce_ms"]}))'
