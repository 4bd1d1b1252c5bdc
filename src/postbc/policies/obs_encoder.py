"""Observation encoder for policies and ensembles that see images beside low-dim keys.

Observations stay one flat normalized vector everywhere (datasets, envs, replay buffers); an
image key occupies S * S * 3 consecutive entries of it (pixels mapped from [0, 255] to [-1, 1]).
`ObsEncoder` splits that vector: the low-dim entries pass through unchanged, each image goes
through its own small conv net, and the results are concatenated.

The conv net follows the CPU-sized end of the visuomotor-policy designs (robomimic / diffusion
policy use a ResNet-18 with spatial softmax; DrQ-v2 four 3x3 convs): three 3x3 convs of 32 channels
(strides 2, 2, 1), spatial softmax keypoints (x, y per channel), and a linear layer to
`image_features`. Training applies DrQ's random shift (pad 4 with edge pixels, crop back at a
random offset, per sample); evaluation (`.eval()`) sees the frames as they are.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from postbc.envs.cameras import CHANNELS, image_side, is_image_key
from postbc.envs.registry import key_slices

CONV_CHANNELS = 32
SHIFT_PAD = 4


def image_layout(obs_keys: Sequence[str], obs_dims: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """(offset, side) of every image key within the flat observation, in key order."""
    return tuple((part.start, image_side(key, part.stop - part.start))
                 for key, part in key_slices(obs_keys, obs_dims) if is_image_key(key))


def random_shift(images: torch.Tensor, pad: int = SHIFT_PAD, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ's augmentation: shift each (C, S, S) image by up to `pad` pixels, filling with its edge pixels."""
    B, _, S, _ = images.shape
    padded = F.pad(images, (pad,) * 4, mode="replicate")
    shifts = torch.randint(0, 2 * pad + 1, (B, 2), generator=generator).to(images.device)
    rows = (shifts[:, 0, None] + torch.arange(S, device=images.device))  # (B, S)
    cols = (shifts[:, 1, None] + torch.arange(S, device=images.device))
    batch = torch.arange(B, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image coordinates in [-1, 1] of each channel's softmax over pixels: (B, 2C)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        B, C, H, W = features.shape
        attention = features.flatten(2).softmax(-1).view(B, C, H, W)
        ys = torch.linspace(-1, 1, H, device=features.device, dtype=features.dtype)
        xs = torch.linspace(-1, 1, W, device=features.device, dtype=features.dtype)
        return torch.cat([(attention.sum(2) * xs).sum(-1), (attention.sum(3) * ys).sum(-1)], dim=-1)


class ConvImageEncoder(nn.Module):
    """(B, S * S * 3) normalized pixels, channels last -> (B, features)."""

    def __init__(self, side: int, features: int):
        super().__init__()
        self.side = side
        layers: list[nn.Module] = []
        channels = CHANNELS
        for stride in (2, 2, 1):  # 84 -> 41 -> 20 -> 18 keypoint maps (48 -> 9, 32 -> 5)
            layers += [nn.Conv2d(channels, CONV_CHANNELS, 3, stride=stride), nn.ReLU()]
            channels = CONV_CHANNELS
        self.convs = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax()
        self.out = nn.Sequential(nn.Linear(2 * CONV_CHANNELS, features), nn.LayerNorm(features))

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        images = flat.view(flat.shape[0], self.side, self.side, CHANNELS).permute(0, 3, 1, 2)
        if self.training:
            images = random_shift(images)
        return self.out(self.keypoints(self.convs(images)))


class ObsEncoder(nn.Module):
    """Flat observation (B, obs_dim) -> (B, out_dim): low-dim entries as they are, each image encoded."""

    def __init__(self, obs_dim: int, images: Sequence[Sequence[int]], image_features: int):
        super().__init__()
        self.images = tuple((int(offset), int(side)) for offset, side in images)
        in_image = torch.zeros(obs_dim, dtype=torch.bool)
        for offset, side in self.images:
            if offset < 0 or offset + side * side * CHANNELS > obs_dim:
                raise ValueError(f"image at offset {offset} with side {side} does not fit an observation of {obs_dim} values")
            in_image[offset: offset + side * side * CHANNELS] = True
        self.register_buffer("low_dim_index", torch.nonzero(~in_image).squeeze(-1), persistent=False)
        self.encoders = nn.ModuleList(ConvImageEncoder(side, image_features) for _, side in self.images)
        self.out_dim = int((~in_image).sum()) + image_features * len(self.images)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        parts = [obs.index_select(1, self.low_dim_index)]
        for (offset, side), encoder in zip(self.images, self.encoders):
            parts.append(encoder(obs[:, offset: offset + side * side * CHANNELS]))
        return torch.cat(parts, dim=-1)
