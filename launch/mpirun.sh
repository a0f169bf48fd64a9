#!/usr/bin/env bash
# Runs `ocm` on N ranks of this machine (or of the hosts in $OCM_HOSTFILE) with sensible
# defaults: each rank bound to its own cores and given that many compute threads, run as root
# when it must, oversubscribed only when N exceeds the cores.
#   launch/mpirun.sh N train configs/fashion_mnist.yaml
#   OCM_HOSTFILE=hosts launch/mpirun.sh 16 train configs/cifar10.yaml
# Extra mpirun arguments: OCM_MPIRUN_ARGS="--mca btl_tcp_if_include eth0". See docs/cluster.md.
set -euo pipefail
if [[ $# -lt 2 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: launch/mpirun.sh N OCM-ARGUMENTS..." >&2
  exit 2
fi
ranks=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocm=${OCM_BINARY:-$here/${OCM_BUILD_DIR:-build}/apps/ocm}
if [[ ! -x $ocm ]]; then
  echo "launch/mpirun.sh: $ocm is missing; run launch/setup.sh first" >&2
  exit 2
fi
args=(-np "$ranks")
if [[ $(id -u) == 0 ]]; then
  args+=(--allow-run-as-root)
fi
if [[ -n ${OCM_HOSTFILE:-} ]]; then
  args+=(--hostfile "$OCM_HOSTFILE" --map-by ppr:"${OCM_RANKS_PER_NODE:-1}":node --bind-to none)
else
  cores=$(nproc)
  if ((ranks <= cores)); then
    per_rank=$((cores / ranks))
    # Each rank on its own cores; ocm reads its affinity mask to size its thread pool.
    args+=(--map-by "slot:PE=$per_rank" --bind-to core)
  else
    args+=(--oversubscribe --bind-to none)
  fi
fi
# shellcheck disable=SC2086  # OCM_MPIRUN_ARGS is a list of arguments
exec mpirun "${args[@]}" ${OCM_MPIRUN_ARGS:-} "$ocm" "$@"
