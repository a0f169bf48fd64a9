#!/usr/bin/env bash
# Time and peak memory of `ocm import` of a 121M-parameter checkpoint (improved DDPM's
# ImageNet-64 network, configs/published/imagenet64.yaml, random float32 weights written by
# torch.save from the test reference), against torch.load + load_state_dict in Python (Debian's
# python3-torch) on the same file, alternating `rounds` times. One JSON line per run, then a
# summary line with the medians and their ratio.
#   bench/import_bench.sh [WORKDIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${1:-/tmp/ocm-import-bench}
rounds=${2:-3}
ocm=${OCM_BINARY:-build/apps/ocm}
python=/usr/bin/python3
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "import_bench: needs Debian's python3-torch (apt-get install python3-torch)" >&2
  exit 1
fi
mkdir -p "$work/images/class"

# The checkpoint and a two-image 64x64 dataset (import reads the sample shape from it).
"$python" - "$work" <<'EOF'
import os, sys, zlib, struct
import torch
sys.path.insert(0, "tests/reference")
import published_unets as pu
work = sys.argv[1]
if not os.path.exists(f"{work}/imagenet64.pt"):
    torch.manual_seed(0)
    net = pu.IddpmUNet(3, 64, 128, [1, 2, 3, 4], 3, [16, 8], 0.0, num_heads=4, scale_shift=True,
                       learn_sigma=True)
    torch.save(net.state_dict(), f"{work}/imagenet64.pt")
def png(path, seed):
    rows = b"".join(b"\x00" + bytes((seed * 7 + x * 3 + y) % 256 for x in range(64 * 3)) for y in range(64))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
for i in range(2):
    png(f"{work}/images/class/{i}.png", i)
EOF
if [[ ! -f $work/data/manifest.json ]]; then
  "$ocm" data prepare folder --source "$work/images" --resolution 64 --out "$work/data" >/dev/null
fi

measure() {  # prints "seconds peak_kib" of the command
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >/dev/null
  cat "$work/time.txt"
}
ours=() theirs=()
for round in $(seq "$rounds"); do
  rm -rf "$work/run"
  read -r seconds kib < <(measure "$ocm" import "$work/imagenet64.pt" \
    --config configs/published/imagenet64.yaml --out "$work/run" --set data.path="$work/data")
  echo "{\"bench\": \"import\", \"side\": \"ocm\", \"round\": $round, \"seconds\": $seconds, \"peak_rss_mib\": $((kib / 1024))}"
  ours+=("$seconds $kib")
  read -r seconds kib < <(measure "$python" -c "
import sys, torch
sys.path.insert(0, 'tests/reference')
import published_unets as pu
net = pu.IddpmUNet(3, 64, 128, [1, 2, 3, 4], 3, [16, 8], 0.0, num_heads=4, scale_shift=True, learn_sigma=True)
net.load_state_dict(torch.load('$work/imagenet64.pt', map_location='cpu'))")
  echo "{\"bench\": \"import\", \"side\": \"pytorch\", \"round\": $round, \"seconds\": $seconds, \"peak_rss_mib\": $((kib / 1024))}"
  theirs+=("$seconds $kib")
done
"$python" - "${ours[@]}" -- "${theirs[@]}" <<'EOF'
import json, statistics, sys
args = sys.argv[1:]
split = args.index("--")
def medians(items):
    pairs = [tuple(map(float, item.split())) for item in items]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs) / 1024
ours, theirs = medians(args[:split]), medians(args[split + 1:])
print(json.dumps({"bench": "import_summary", "runs": len(args[:split]),
                  "ocm_seconds_median": ours[0], "pytorch_seconds_median": theirs[0],
                  "seconds_ratio_ocm_over_pytorch": round(ours[0] / theirs[0], 3),
                  "ocm_peak_rss_mib_median": round(ours[1]), "pytorch_peak_rss_mib_median": round(theirs[1])}))
EOF
