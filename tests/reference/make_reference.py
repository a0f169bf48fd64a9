"""Writes the PyTorch side of ocm's published-network tests (tests/unit/published_networks_test).

usage: make_reference.py OUT_DIR

For each case: a network of published_unets.py at reduced width with every weight random, in
float64, its outputs on fixed inputs and timesteps, in OUT_DIR/<case>.safetensors:
  trunk/<published key>, head/<published key>   the weights
  x [B, C, H, W], t [B] (steps in 1..N)          the inputs
  eps, variance (learned sigma), features, h     the outputs (h: the OCM head's)
and the case's ocm config in the file's metadata. The ddpm_simple_head case's trunk is also
saved with torch.save in each container layout (OUT_DIR/ddpm_simple_head.<layout>.pt), and the
iddpm_imagenet trunk alone as float32 OUT_DIR/iddpm_imagenet.weights.safetensors.
OUT_DIR/parameter_counts.json holds the parameter counts of the full-size published configurations.
"""

import argparse
import copy
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import published_unets as pu  # noqa: E402

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path, tensors, metadata):
    """The .safetensors layout: 8-byte header length, JSON header, raw little-endian tensors."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in tensors.items():
        data = tensor.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def network_time(t, convention, n):
    shift = 1 if convention.startswith("(t-1)") or convention == "t-1" else 0
    scale = 1000.0 / n if "1000" in convention else 1.0
    return (t.float() - shift) * scale


# Each case: the ocm model config, N, the time convention the family publishes, the image shape.
CASES = {
    "ddpm": dict(model=dict(kind="unet", ch=32, ch_mult=[1, 2, 2], num_res_blocks=2,
                            attn_resolutions=[8], dropout=0.1, head="complex"),
                 n=1000, time_input="t-1", shape=[3, 16, 16]),
    "ddpm_simple_head": dict(model=dict(kind="unet", ch=32, ch_mult=[1, 2], num_res_blocks=1,
                                        attn_resolutions=[4], dropout=0.0, head="simple"),
                             n=1000, time_input="t-1", shape=[1, 8, 8]),
    "iddpm_cifar": dict(model=dict(kind="iddpm", ch=32, ch_mult=[1, 2, 2], num_res_blocks=3,
                                   attn_resolutions=[8, 4], dropout=0.3, head="complex",
                                   num_heads=4, use_scale_shift_norm=True),
                        n=1000, time_input="(t-1)*1000/N", shape=[3, 16, 16]),
    "iddpm_imagenet": dict(model=dict(kind="iddpm", ch=32, ch_mult=[1, 2, 3], num_res_blocks=2,
                                      attn_resolutions=[8, 4], dropout=0.0, head="simple",
                                      num_heads=4, use_scale_shift_norm=True, learn_sigma=True),
                           n=4000, time_input="(t-1)*1000/N", shape=[3, 16, 16]),
    "guided": dict(model=dict(kind="iddpm", ch=32, ch_mult=[1, 2, 2], num_res_blocks=1,
                              attn_resolutions=[8, 4], dropout=0.1, head="complex",
                              num_head_channels=16, use_scale_shift_norm=True,
                              resblock_updown=True, learn_sigma=True),
                   n=1000, time_input="(t-1)*1000/N", shape=[3, 16, 16]),
}


def build(model, shape):
    in_ch, res = shape[0], shape[1]
    common = (in_ch, res, model["ch"], model["ch_mult"], model["num_res_blocks"],
              model["attn_resolutions"], model["dropout"])
    feature_ch, t_dim = model["ch"] * model["ch_mult"][0], 4 * model["ch"]
    if model["kind"] == "unet":
        return (pu.DdpmUNet(*common),
                pu.DdpmHead(model["head"], feature_ch, t_dim, in_ch, model["dropout"]))
    trunk = pu.IddpmUNet(*common, num_heads=model.get("num_heads", 1),
                         num_head_channels=model.get("num_head_channels", 0),
                         scale_shift=model.get("use_scale_shift_norm", False),
                         resblock_updown=model.get("resblock_updown", False),
                         learn_sigma=model.get("learn_sigma", False))
    head = pu.IddpmHead(model["head"], feature_ch, t_dim, in_ch, model["dropout"],
                        model.get("use_scale_shift_norm", False))
    return trunk, head


def make_case(name, case, out_dir):
    torch.manual_seed(sum(map(ord, name)))
    trunk, head = build(case["model"], case["shape"])
    trunk, head = trunk.double().eval(), head.double().eval()
    with torch.no_grad():
        for p in list(trunk.parameters()) + list(head.parameters()):
            p.normal_(0, 0.15)  # every weight random, zero-initialised output layers included
        x = torch.randn([3] + case["shape"], dtype=torch.float64)
        t = torch.tensor([1, case["n"] // 2, case["n"]], dtype=torch.int64)
        time = network_time(t, case["time_input"], case["n"])
        features, temb = trunk.features(x, time)
        out = trunk(x, time)
        h = head(features, temb)
    c = case["shape"][0]
    tensors = {f"trunk/{k}": v for k, v in trunk.state_dict().items()}
    tensors.update({f"head/{k}": v for k, v in head.state_dict().items()})
    tensors.update(x=x, t=t, eps=out[:, :c], features=features, h=h)
    if out.shape[1] == 2 * c:
        tensors["variance"] = out[:, c:]
    metadata = {"model": json.dumps(case["model"]), "num_timesteps": str(case["n"]),
                "shape": json.dumps(case["shape"]), "time_input": case["time_input"]}
    write_safetensors(os.path.join(out_dir, name + ".safetensors"), tensors, metadata)
    return trunk


def write_containers(name, trunk, case, out_dir):
    """A trunk's weights in every container layout `ocm import` reads (and some it must refuse),
    as <name>.<layout>.pt."""
    state = trunk.state_dict()  # an OrderedDict with _metadata, as published checkpoints are
    prefixed = type(state)(("module." + k, v) for k, v in state.items())  # DataParallel's
    trained = copy.deepcopy(trunk)
    optimizer = torch.optim.Adam(trained.parameters())
    trained(torch.zeros([1] + case["shape"], dtype=torch.float64),
            torch.zeros(1)).square().sum().backward()
    optimizer.step()
    path = os.path.join(out_dir, name)
    torch.save(state, path + ".state_dict.pt")
    torch.save({"model": prefixed, "ema": state, "step": 10, "args": argparse.Namespace(lr=2e-4)},
               path + ".model_and_ema.pt")
    torch.save([prefixed, optimizer.state_dict(), 3, 1000, state], path + ".ddim_list.pt")
    torch.save({k: v.half() for k, v in state.items()}, path + ".half.pt")
    torch.save(state, path + ".legacy.pt", _use_new_zipfile_serialization=False)
    with open(path + ".not_a_checkpoint.pt", "wb") as f:
        f.write(b"These are not the weights you are looking for.\n")


# The published configurations, as their papers and code give them.
FULL_SIZE = {
    "ddpm_cifar10": (pu.DdpmUNet, (3, 32, 128, [1, 2, 2, 2], 2, [16], 0.1), {}),
    "ddpm_celeba64": (pu.DdpmUNet, (3, 64, 128, [1, 2, 2, 2, 4], 2, [16], 0.1), {}),
    "ddpm_lsun256": (pu.DdpmUNet, (3, 256, 128, [1, 1, 2, 2, 4, 4], 2, [16], 0.0), {}),
    "iddpm_cifar10": (pu.IddpmUNet, (3, 32, 128, [1, 2, 2, 2], 3, [16, 8], 0.3),
                      dict(num_heads=4, scale_shift=True)),
    "iddpm_imagenet64": (pu.IddpmUNet, (3, 64, 128, [1, 2, 3, 4], 3, [16, 8], 0.0),
                         dict(num_heads=4, scale_shift=True, learn_sigma=True)),
    "guided_lsun_bedroom256": (pu.IddpmUNet, (3, 256, 256, [1, 1, 2, 2, 4, 4], 2, [32, 16, 8], 0.1),
                               dict(num_head_channels=64, scale_shift=True, resblock_updown=True,
                                    learn_sigma=True)),
}


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for name, case in CASES.items():
        trunk = make_case(name, case, out_dir)
        if name == "ddpm_simple_head":
            write_containers(name, trunk, case, out_dir)
        if name == "iddpm_imagenet":  # a published-style .safetensors: the state dict alone
            write_safetensors(os.path.join(out_dir, name + ".weights.safetensors"),
                              {k: v.float() for k, v in trunk.state_dict().items()}, {})
    counts = {}
    for name, (cls, args, kwargs) in FULL_SIZE.items():
        with uninitialised_weights():
            network = cls(*args, **kwargs)
        counts[name] = sum(p.numel() for p in network.parameters())
    with open(os.path.join(out_dir, "parameter_counts.json"), "w") as f:
        json.dump(counts, f, indent=1)


class uninitialised_weights:
    """Skips PyTorch's weight initialisation: counting 550M parameters need not fill them."""

    names = ("kaiming_uniform_", "uniform_", "zeros_", "ones_")

    def __enter__(self):
        self.saved = {n: getattr(torch.nn.init, n) for n in self.names}
        for n in self.names:
            setattr(torch.nn.init, n, lambda tensor, *args, **kwargs: tensor)

    def __exit__(self, *args):
        for n, f in self.saved.items():
            setattr(torch.nn.init, n, f)
        return False


if __name__ == "__main__":
    main()
