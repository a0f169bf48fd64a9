"""Loads a file written by `ocm export` into the reference networks, as a user would.

usage: check_export.py EXPORTED.pt CASE.safetensors OUT.safetensors

torch.load reads EXPORTED.pt; load_state_dict(strict=True) puts it into the reference trunk and
head of CASE's configuration (published_unets.py), which must take every tensor by name and
shape. Their float32 outputs on CASE's inputs go to OUT.safetensors (eps, h) for the C++ side to
compare with its own.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as ref  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
        data = f.read()
    dtypes = {"F64": torch.float64, "F32": torch.float32, "I64": torch.int64}
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtypes[entry["dtype"]])
        tensors[name] = flat.reshape(entry["shape"])
    return tensors, header["__metadata__"]


def main():
    exported, case_path, out_path = sys.argv[1:4]
    inputs, metadata = read_safetensors(case_path)
    model, shape = json.loads(metadata["model"]), json.loads(metadata["shape"])
    n = int(metadata["num_timesteps"])
    trunk, head = ref.build(model, shape)
    state = torch.load(exported, map_location="cpu")
    head_keys = set(head.state_dict())
    trunk.load_state_dict({k: v for k, v in state.items() if k not in head_keys}, strict=True)
    head.load_state_dict({k: v for k, v in state.items() if k in head_keys}, strict=True)
    trunk.eval()
    head.eval()
    convention = metadata["time_input"]
    with torch.no_grad():
        x = inputs["x"].float()
        time = ref.network_time(inputs["t"], convention, n)
        features, temb = trunk.features(x, time)
        eps = trunk(x, time)[:, : shape[0]]
        h = head(features, temb)
    ref.write_safetensors(out_path, {"eps": eps, "h": h}, {})


if __name__ == "__main__":
    main()
