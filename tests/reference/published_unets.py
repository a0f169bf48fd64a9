"""An independent PyTorch version of the two published UNet families, for the tests.

Written for ocm's tests from the published architecture descriptions (Ho et al. 2020 and its
PyTorch port; Nichol & Dhariwal 2021 and guided diffusion): the parameter names, shapes and
arithmetic are the published ones, so a state_dict of these modules is laid out as a published
checkpoint. The C++ networks (diffusion/ddpm_unet.cpp, diffusion/iddpm_unet.cpp) must reproduce
what these compute; nothing here is shared with them.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def groups(channels):
    return math.gcd(32, channels)


def embed(time, dim, family):
    """Sinusoidal embedding of float times [B] into [B, dim], in float32."""
    half = dim // 2
    index = torch.arange(half, dtype=torch.float32)
    if family == "unet":
        frequencies = torch.exp(index * -(math.log(10000) / (half - 1)))
    else:
        frequencies = torch.exp(-math.log(10000) * index / half)
    angles = time.float()[:, None] * frequencies[None, :]
    parts = [angles.sin(), angles.cos()] if family == "unet" else [angles.cos(), angles.sin()]
    return torch.cat(parts, dim=1)


def norm_at_least_fp32(norm, x):
    """GroupNorm in float32 for lower precisions (improved DDPM); float64 stays float64."""
    if x.dtype == torch.float64:
        return norm(x)
    return norm(x.float()).type(x.dtype)


# --- DDPM (Ho et al.) --------------------------------------------------------------------------


def ddpm_norm(channels):
    return nn.GroupNorm(groups(channels), channels, eps=1e-6)


class DdpmResnetBlock(nn.Module):
    def __init__(self, c_in, c_out, t_dim, dropout):
        super().__init__()
        self.norm1 = ddpm_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(t_dim, c_out)
        self.norm2 = ddpm_norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        if c_in != c_out:
            self.nin_shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        shortcut = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return shortcut + h


class DdpmAttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = ddpm_norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, height, width = x.shape
        h = self.norm(x)
        q = self.q(h).flatten(2)  # [B, C, HW]
        k = self.k(h).flatten(2)
        v = self.v(h).flatten(2)
        attention = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=2)
        out = torch.einsum("bij,bcj->bci", attention, v).reshape(b, c, height, width)
        return x + self.proj_out(out)


class DdpmDown(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class DdpmUp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DdpmUNet(nn.Module):
    def __init__(self, in_ch, resolution, ch, ch_mult, num_res_blocks, attn_resolutions, dropout):
        super().__init__()
        t_dim = 4 * ch
        self.ch = ch
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, t_dim), nn.Linear(t_dim, t_dim)])
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        widths = [ch * m for m in ch_mult]
        skips, c, size = [ch], ch, resolution
        self.down = nn.ModuleList()
        for level, width in enumerate(widths):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                stage.block.append(DdpmResnetBlock(c, width, t_dim, dropout))
                c = width
                if size in attn_resolutions:
                    stage.attn.append(DdpmAttnBlock(c))
                skips.append(c)
            if level < len(widths) - 1:
                stage.downsample = DdpmDown(c)
                skips.append(c)
                size //= 2
            self.down.append(stage)
        self.mid = nn.Module()
        self.mid.block_1 = DdpmResnetBlock(c, c, t_dim, dropout)
        self.mid.attn_1 = DdpmAttnBlock(c)
        self.mid.block_2 = DdpmResnetBlock(c, c, t_dim, dropout)
        up_stages = []
        for level in reversed(range(len(widths))):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                stage.block.append(DdpmResnetBlock(c + skips.pop(), widths[level], t_dim, dropout))
                c = widths[level]
                if size in attn_resolutions:
                    stage.attn.append(DdpmAttnBlock(c))
            if level > 0:
                stage.upsample = DdpmUp(c)
                size *= 2
            up_stages.insert(0, stage)
        self.up = nn.ModuleList(up_stages)
        self.norm_out = ddpm_norm(c)
        self.conv_out = nn.Conv2d(c, in_ch, 3, padding=1)

    def features(self, x, time):
        """The decoder's last features and the time embedding."""
        temb = self.temb.dense[1](F.silu(self.temb.dense[0](embed(time, self.ch, "unet").to(x))))
        hs = [self.conv_in(x)]
        for stage in self.down:
            for i, block in enumerate(stage.block):
                h = block(hs[-1], temb)
                hs.append(stage.attn[i](h) if len(stage.attn) else h)
            if hasattr(stage, "downsample"):
                hs.append(stage.downsample(hs[-1]))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(hs[-1], temb)), temb)
        for stage in reversed(self.up):
            for i, block in enumerate(stage.block):
                h = block(torch.cat([h, hs.pop()], dim=1), temb)
                h = stage.attn[i](h) if len(stage.attn) else h
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return h, temb

    def forward(self, x, time):
        h, _ = self.features(x, time)
        return self.conv_out(F.silu(self.norm_out(h)))


class DdpmHead(nn.Module):
    """OCM's head on the DDPM network: [before_out,] norm_out2, conv_out2."""

    def __init__(self, kind, c, t_dim, out_ch, dropout):
        super().__init__()
        if kind == "complex":
            self.before_out = DdpmResnetBlock(c, c, t_dim, dropout)
        self.norm_out2 = ddpm_norm(c)
        self.conv_out2 = nn.Conv2d(c, out_ch, 3, padding=1)

    def forward(self, h, temb):
        if hasattr(self, "before_out"):
            h = self.before_out(h, temb)
        return self.conv_out2(F.silu(self.norm_out2(h)))


# --- improved DDPM / guided diffusion ----------------------------------------------------------


class GroupNorm32(nn.GroupNorm):
    def forward(self, x):
        if x.dtype == torch.float64:
            return super().forward(x)
        return super().forward(x.float()).type(x.dtype)


def iddpm_norm(channels):
    return GroupNorm32(groups(channels), channels)  # eps 1e-5, PyTorch's default


class IddpmResBlock(nn.Module):
    def __init__(self, c_in, c_out, t_dim, dropout, scale_shift, resample=None):
        super().__init__()
        self.scale_shift, self.resample = scale_shift, resample
        self.in_layers = nn.Sequential(iddpm_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(t_dim, 2 * c_out if scale_shift else c_out))
        self.out_layers = nn.Sequential(
            iddpm_norm(c_out), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(c_out, c_out, 3, padding=1)
        )
        self.skip_connection = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def change_size(self, x):
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x, emb):
        h = self.in_layers[1](self.in_layers[0](x))
        h = self.in_layers[2](self.change_size(h))
        x = self.change_size(x)
        e = self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            for layer in self.out_layers[1:]:
                h = layer(h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class IddpmAttention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.norm = iddpm_norm(c)
        self.qkv = nn.Conv1d(c, 3 * c, 1)
        self.proj_out = nn.Conv1d(c, c, 1)

    def forward(self, x):
        b, c = x.shape[:2]
        flat = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(flat))
        per_head = qkv.reshape(b * self.heads, 3 * c // self.heads, -1)
        q, k, v = per_head.chunk(3, dim=1)  # each head's q, k, v are consecutive slices
        d = q.shape[1]
        logits = torch.einsum("bdi,bdj->bij", q, k) / math.sqrt(d)
        compute = torch.float64 if logits.dtype == torch.float64 else torch.float32
        weights = torch.softmax(logits.to(compute), dim=-1).to(logits.dtype)
        out = torch.einsum("bij,bdj->bdi", weights, v).reshape(b, c, -1)
        return (flat + self.proj_out(out)).reshape(x.shape)


class IddpmResample(nn.Module):
    def __init__(self, c, down):
        super().__init__()
        self.down = down
        if down:
            self.op = nn.Conv2d(c, c, 3, stride=2, padding=1)
        else:
            self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        if self.down:
            return self.op(x)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class EmbedSequential(nn.Sequential):
    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, IddpmResBlock) else layer(x)
        return x


class IddpmUNet(nn.Module):
    def __init__(self, in_ch, resolution, ch, ch_mult, num_res_blocks, attn_resolutions, dropout,
                 num_heads=1, num_head_channels=0, scale_shift=False, resblock_updown=False,
                 learn_sigma=False):
        super().__init__()
        t_dim = 4 * ch
        self.ch, self.in_ch, self.learn_sigma = ch, in_ch, learn_sigma

        def heads(c):
            return c // num_head_channels if num_head_channels > 0 else num_heads

        def res(c_in, c_out, resample=None):
            return IddpmResBlock(c_in, c_out, t_dim, dropout, scale_shift, resample)

        self.time_embed = nn.Sequential(nn.Linear(ch, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(in_ch, ch, 3, padding=1))])
        skips, c, size = [ch], ch, resolution
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                layers = [res(c, ch * mult)]
                c = ch * mult
                if size in attn_resolutions:
                    layers.append(IddpmAttention(c, heads(c)))
                self.input_blocks.append(EmbedSequential(*layers))
                skips.append(c)
            if level < len(ch_mult) - 1:
                down = res(c, c, "down") if resblock_updown else IddpmResample(c, True)
                self.input_blocks.append(EmbedSequential(down))
                skips.append(c)
                size //= 2
        self.middle_block = EmbedSequential(res(c, c), IddpmAttention(c, heads(c)), res(c, c))
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(ch_mult))):
            for i in range(num_res_blocks + 1):
                layers = [res(c + skips.pop(), ch * ch_mult[level])]
                c = ch * ch_mult[level]
                if size in attn_resolutions:
                    layers.append(IddpmAttention(c, heads(c)))
                if level > 0 and i == num_res_blocks:
                    layers.append(res(c, c, "up") if resblock_updown else IddpmResample(c, False))
                    size *= 2
                self.output_blocks.append(EmbedSequential(*layers))
        self.out = nn.Sequential(iddpm_norm(c), nn.SiLU(), nn.Conv2d(c, in_ch * (2 if learn_sigma else 1), 3, padding=1))

    def features(self, x, time):
        emb = self.time_embed(embed(time, self.ch, "iddpm").to(x))
        hs, h = [], x
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return h, emb

    def forward(self, x, time):
        h, _ = self.features(x, time)
        return self.out(h)


class IddpmHead(nn.Module):
    """OCM's head on the improved-DDPM network: out2 = [ResBlock,] norm, SiLU, conv."""

    def __init__(self, kind, c, t_dim, out_ch, dropout, scale_shift):
        super().__init__()
        layers = [IddpmResBlock(c, c, t_dim, dropout, scale_shift)] if kind == "complex" else []
        layers += [iddpm_norm(c), nn.SiLU(), nn.Conv2d(c, out_ch, 3, padding=1)]
        self.out2 = EmbedSequential(*layers)

    def forward(self, h, emb):
        return self.out2(h, emb)
