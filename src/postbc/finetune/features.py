"""What the finetuning networks see of an observation: the flat observation itself, or, for a policy
that acts from images, the frozen pretrained policy's own observation encoding.

SAC's actor and critics (DSRL) and IQL (Best-of-N) are MLPs over one vector. An image policy's flat
observation holds S * S * 3 pixels per camera: 85 KB per 84-pixel frame as float32, so a replay
buffer of 200k transitions (obs and next obs) would need 34 GB, and an MLP over raw pixels learns
nothing from a few thousand rollouts. The pretrained denoiser already maps the (normalized)
observation to its low-dim entries plus a few keypoint features per image (`ObsEncoder`), trained
by behavioral cloning to find what the demonstrator's actions depend on. Finetuning reuses that
encoder frozen and in evaluation mode (no random shift): replay buffers and rollouts files hold its
features, and DSRL's observation scaler is fitted on them (`postbc.finetune.obs_scaling`).

A low-dim policy's networks keep seeing the raw flat observation (scaled as before), so runs and
checkpoints made before this module read as they did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class PolicyFeatures:
    """Raw flat observations (B, obs_dim) -> the vectors (B, dim) the finetuning networks see, float32 on the CPU."""

    def __init__(self, base: Any, obs_dim: int):
        denoiser = getattr(getattr(base, "model", None), "denoiser", None)
        self.base = base
        self.encoder = getattr(denoiser, "encoder", None)
        self.dim = int(self.encoder.out_dim) if self.encoder is not None else int(obs_dim)

    @property
    def encodes(self) -> bool:
        """True for an image policy: the vectors are the encoder's features, not the observation."""
        return self.encoder is not None

    def __call__(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        obs_t = torch.as_tensor(np.asarray(obs, np.float32) if not isinstance(obs, torch.Tensor) else obs,
                                dtype=torch.float32)
        if self.encoder is None:
            return obs_t.cpu()
        with torch.no_grad(), torch.autocast(self.base.device.type, enabled=False):
            normalized = self.base.obs_normalizer.normalize(obs_t.to(self.base.device))
            was_training = self.encoder.training
            self.encoder.eval()
            try:
                return self.encoder(normalized).float().cpu()
            finally:
                self.encoder.train(was_training)
