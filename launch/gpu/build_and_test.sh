#!/usr/bin/env bash
# Runs on a GPU host (launch/gpu/env.sh says what it needs). Builds `ocm`, the GPU tests and the
# step benchmark with CUDA and NCCL, runs the tests, then the GPU training benchmark beside the
# same step in PyTorch on the same GPU, eager and under torch.compile, and writes every figure,
# with the GPU's name, into the output folder (first argument, default gpu-results/): host.txt,
# build.log, cuda_test.log, bench.jsonl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

out=$(realpath -m "${1:-gpu-results}")
mkdir -p "$out"
source launch/gpu/env.sh
# Only what runs here: the CLI (with `ocm bench`), the GPU tests and the step benchmark.
gpu_build "$out" ocm cuda_test ocm_bench_diffusion

status=0
build-gpu/tests/cuda_test 2>&1 | tee "$out/cuda_test.log" || status=1

# A CIFAR-10-shaped dataset of random pixels (the benchmark times the step, not the learning).
data=$(mktemp -d)
python3 - "$data/source" <<'EOF'
import os, sys
import numpy as np
os.makedirs(sys.argv[1])
rng = np.random.default_rng(0)
for name, count in [(f"data_batch_{i}.bin", 2000) for i in range(1, 6)] + [("test_batch.bin", 500)]:
    records = rng.integers(0, 256, size=(count, 3073), dtype=np.uint8)
    records[:, 0] %= 10
    records.tofile(os.path.join(sys.argv[1], name))
EOF
build-gpu/apps/ocm data prepare cifar10 --source "$data/source" --out "$data/cifar" >/dev/null

# Side by side, alternating (the GPU's clocks and the host are shared). ocm's step includes its
# data loader and per-sample draws; PyTorch draws its noise on the GPU. Each ocm line carries
# the roofline: FLOPs per image from the network, the measured bf16 matmul and copy ceilings,
# and MFU (bench/README.md).
ocm_bench() {  # precision channels_last batch [--set KEY=VALUE ...]
  local precision=$1 channels_last=$2 batch=$3
  shift 3
  build-gpu/apps/ocm bench train --config configs/cifar10.yaml --batch "$batch" --steps 30 \
    --warmup 5 --set data.path="$data/cifar" --set dist.device=cuda \
    --set dist.precision="$precision" --set dist.channels_last="$channels_last" "$@" |
    tee -a "$out/bench.jsonl" || status=1
}
torch_bench() {  # precision channels_last batch compile-mode [warmup]
  local flag=""
  [[ $2 == true ]] && flag=--channels-last
  build-gpu/apps/ocm config show configs/cifar10.yaml |
    timeout 300 python3 bench/pytorch_reference.py --shape 3 32 32 --batch "$3" --steps 30 \
      --warmup "${5:-5}" --device cuda --precision "$1" $flag --compile "$4" |
    tee -a "$out/bench.jsonl" || status=1
}
for _ in 1 2; do
  ocm_bench bf16 true 128
  torch_bench bf16 true 128 none
done
ocm_bench bf16 true 128 --set run.generator=stream  # the host-drawn generator, for the ablation
ocm_bench fp32 false 128
torch_bench fp32 false 128 none
ocm_bench bf16 true 512
torch_bench bf16 true 512 none
# torch.compile compiles during its warmup steps; max-autotune takes minutes, so it comes last.
torch_bench bf16 true 128 default 10
torch_bench bf16 true 512 default 10
torch_bench bf16 true 128 max-autotune 10
# The OCM step against the score step, and sampling steps, in fp32 (bench/README.md).
build-gpu/bench/ocm_bench_diffusion --device cuda --config configs/cifar10.yaml --shape 3 32 32 \
  --batch 128 --iterations 20 | tee -a "$out/bench.jsonl" || status=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee -a "$out/host.txt"
rm -rf "$data"
exit $status
