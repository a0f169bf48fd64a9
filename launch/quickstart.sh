#!/usr/bin/env bash
# The main job from a fresh machine, on 2 MPI ranks: set up and build; prepare Fashion-MNIST
# (Debian's dataset-fashion-mnist) as a sharded dataset; train the score network and then the
# OCM head (configs/fashion_mnist_quick.yaml); train the small classifier whose features FD
# uses; evaluate K = 5, 10, 25 with DDPM and DDIM under fixed-small, analytic and OCM (FD and
# bits/dim); print where the report, plots and sample grids are. Rerunning reuses what is done
# (a finished run is not retrained, a finished evaluation not repeated).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
OCM_BUILD_TARGETS=ocm bash launch/setup.sh
ocm="${OCM_BUILD_DIR:-build}/apps/ocm"
"$ocm" --version
if [[ ! -f datasets/fashion_mnist/manifest.json ]]; then
  "$ocm" data prepare fashion-mnist --out datasets/fashion_mnist
fi
"$ocm" data verify datasets/fashion_mnist

config=configs/fashion_mnist_quick.yaml
run=runs/fashion_mnist_quick
classifier=runs/fashion_classifier_quick
# Rerunning `ocm train` resumes (and does nothing once both phases are done).
bash launch/mpirun.sh 2 train "$config"
"$ocm" classifier train --data datasets/fashion_mnist --out "$classifier" --steps 600
if [[ ! -f $run/eval/results.md ]]; then
  bash launch/mpirun.sh 2 eval "$run" --steps 5,10,25 --sampler ddpm,ddim \
    --cov fixed-small,analytic,ocm --metric fd,nll --features "$classifier" \
    --num-samples 200 --nll-samples 200 --analytic-samples 256
fi
cat <<DONE

quickstart: done in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s
  report:        $run/eval/results.md (every value also in $run/eval/results.jsonl)
  plots:         $run/eval/fd.png, $run/eval/nll.png
  sample grids:  $run/eval/grids/
  training:      $run/metrics.jsonl, checkpoints in $run/checkpoints/
These figures come from a few minutes of training and 200 samples; docs/results.md has the
hour-long run of configs/fashion_mnist.yaml.
DONE
