#!/usr/bin/python3
"""The score-phase training step of `ocm train`, written in PyTorch, for `bench/train_vs_pytorch.sh`.

Reads a resolved config (`ocm config show CONFIG`) on stdin and trains the same UNet (same
layers, parameter names and count), loss, Adam, gradient clipping and EMA on random data of the
dataset's shape, then prints one JSON line: the median step time, images/s and, on CUDA, peak
memory. Data loading is left out here (it is included in `ocm bench train`), which favours this
side; so does drawing the noise with torch on the device rather than per sample. On CUDA,
--precision bf16 and --channels-last do what dist.precision and dist.channels_last do.
"""
import argparse
import contextlib
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml


def group_norm(channels):
    return nn.GroupNorm(math.gcd(32, channels), channels)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, time_dim, dropout):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, cout)
        self.norm2 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, height, width = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, -1).transpose(1, 2)
        k = self.k(h).reshape(b, c, -1)
        v = self.v(h).reshape(b, c, -1).transpose(1, 2)
        weights = torch.softmax(torch.bmm(q, k) / math.sqrt(c), -1)
        return x + self.out(torch.bmm(weights, v).transpose(1, 2).reshape(x.shape))


def timestep_embedding(t, dim):
    half = dim // 2
    frequencies = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device)
                            * (-math.log(10000.0) / (half - 1)))
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], 1)


class UNet(nn.Module):
    def __init__(self, in_channels, resolution, ch, ch_mult, num_res_blocks, attn_resolutions, dropout):
        super().__init__()
        self.ch = ch
        self.blocks_per_level = num_res_blocks
        time_dim = 4 * ch
        self.time_in = nn.Linear(ch, time_dim)
        self.time_out = nn.Linear(time_dim, time_dim)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down, self.up = [], []

        def stage(name, cin, cout, res):
            block = ResBlock(cin, cout, time_dim, dropout)
            self.add_module(name + "_block", block)
            attention = None
            if res in attn_resolutions:
                attention = Attention(cout)
                self.add_module(name + "_attn", attention)
            return block, attention

        skips, channels, res = [ch], ch, resolution
        self.downsample = []
        for level, mult in enumerate(ch_mult):
            for i in range(num_res_blocks):
                self.down.append(stage(f"down{level}_{i}", channels, ch * mult, res))
                channels = ch * mult
                skips.append(channels)
            if level + 1 < len(ch_mult):
                conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
                self.add_module(f"downsample{level}", conv)
                self.downsample.append(conv)
                skips.append(channels)
                res //= 2
        self.mid_block1 = ResBlock(channels, channels, time_dim, dropout)
        self.mid_attn = Attention(channels)
        self.mid_block2 = ResBlock(channels, channels, time_dim, dropout)
        self.upsample = []
        for level in reversed(range(len(ch_mult))):
            for i in range(num_res_blocks + 1):
                self.up.append(stage(f"up{level}_{i}", channels + skips.pop(), ch * ch_mult[level], res))
                channels = ch * ch_mult[level]
            if level > 0:
                conv = nn.Conv2d(channels, channels, 3, padding=1)
                self.add_module(f"upsample{level}", conv)
                self.upsample.append(conv)
                res *= 2
        self.norm_out = group_norm(channels)
        self.conv_out = nn.Conv2d(channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @staticmethod
    def apply_stage(stage, x, emb):
        block, attention = stage
        h = block(x, emb)
        return attention(h) if attention is not None else h

    def forward(self, x, t):
        emb = self.time_out(F.silu(self.time_in(timestep_embedding(t, self.ch))))
        h = self.conv_in(x)
        skips = [h]
        stage = 0
        for level in range(len(self.downsample) + 1):
            for _ in range(self.blocks_per_level):
                h = self.apply_stage(self.down[stage], h, emb)
                stage += 1
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                skips.append(h)
        h = self.mid_block2(self.mid_attn(self.mid_block1(h, emb)), emb)
        stage = 0
        for level in range(len(self.upsample) + 1):
            for _ in range(self.blocks_per_level + 1):
                h = self.apply_stage(self.up[stage], torch.cat([h, skips.pop()], 1), emb)
                stage += 1
            if level < len(self.upsample):
                h = self.upsample[level](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def linear_abar(num_timesteps):
    betas = torch.linspace(1e-4, 0.02, num_timesteps, dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=3, required=True, help="C H W of a sample")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", choices=["none", "default", "max-autotune"], default="none",
                        help="torch.compile the network in this mode (PyTorch 2); its compilation "
                             "happens in the warmup steps, so give it enough of them")
    args = parser.parse_args()
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    config = yaml.safe_load(__import__("sys").stdin)
    model_config, phase = config["model"], config["phases"]["score"]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    c, height, _ = args.shape
    net = UNet(c, height, model_config["ch"], model_config["ch_mult"], model_config["num_res_blocks"],
               model_config["attn_resolutions"], model_config["dropout"])
    net = net.to(device, memory_format=memory_format)
    ema = [p.detach().clone() for p in net.parameters()]
    forward = net
    if args.compile != "none":
        if not hasattr(torch, "compile"):
            raise SystemExit(f"--compile needs PyTorch 2 or later; this is {torch.__version__}")
        forward = torch.compile(net, mode=args.compile)
    # PyYAML reads numbers such as 2e-4 (no dot) as text.
    phase = {key: float(value) if key in ("lr", "beta1", "beta2", "weight_decay", "grad_clip", "ema")
             else value for key, value in phase.items()}
    optimizer = torch.optim.Adam(net.parameters(), lr=phase["lr"], betas=(phase["beta1"], phase["beta2"]),
                                 weight_decay=phase["weight_decay"])
    # torch 1.13 checks bf16 support on constructing any CUDA autocast, even a disabled one.
    if args.precision == "bf16":
        def autocast():
            return torch.autocast("cuda", dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    abar = linear_abar(config["diffusion"]["num_timesteps"]).float().to(device)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        x0 = (torch.rand(args.batch, *args.shape, device=device) * 2 - 1).contiguous(
            memory_format=memory_format)
        t = torch.randint(1, config["diffusion"]["num_timesteps"] + 1, (args.batch,), device=device)
        noise = torch.randn_like(x0)
        a = abar[t][:, None, None, None]
        with autocast():
            loss = (forward(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - noise).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        loss.item()
        if phase["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), phase["grad_clip"])
        optimizer.step()
        with torch.no_grad():
            for shadow, p in zip(ema, net.parameters()):
                shadow.lerp_(p, 1 - phase["ema"])
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append((time.perf_counter() - start) * 1000)
    step_ms = statistics.median(times)
    peak_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0
    print(json.dumps({"bench": "pytorch_reference", "torch": torch.__version__,
                      "device": str(device), "precision": args.precision,
                      "channels_last": args.channels_last, "compile": args.compile,
                      "peak_device_mb": peak_mb,
                      "parameters": sum(p.numel() for p in net.parameters()),
                      "threads": torch.get_num_threads(), "batch": args.batch,
                      "median_step_ms": step_ms, "img_per_s": 1000 * args.batch / step_ms}))


if __name__ == "__main__":
    main()
