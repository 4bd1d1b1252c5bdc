"""The pretrained policy as finetuning sees it: loading, task checks, and w -> action chunk."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from postbc.envs.registry import TaskSpec
from postbc.errors import PostBCError


def load_base_policy(run_dir: Path, spec: TaskSpec):
    """`PretrainedPolicy.load(run_dir)`, refused when its obs / action sizes do not fit `spec`."""
    from postbc.policies.pretrained import PretrainedPolicy

    from postbc.envs.conditioning import spec_for_policy

    policy = PretrainedPolicy.load(Path(run_dir))
    check_policy_task(policy, spec_for_policy(spec, policy), str(run_dir))
    return policy


IMAGE_ALGOS = ("dsrl", "best_of_n")


def refuse_image_policy(policy: Any, source: str, algo: str) -> None:
    """DSRL-SAC and Best-of-N see an image policy through its frozen encoder (`postbc.finetune.features`);
    DSRL-NA needs the base policy on replayed observations and DPPO trains the denoiser itself, so both
    would need the pixels in their buffers: refused by name."""
    from postbc.envs.cameras import is_image_key

    images = [k for k in getattr(policy, "obs_keys", ()) if is_image_key(k)]
    if images and algo not in IMAGE_ALGOS:
        raise PostBCError(f"checkpoint {source} acts from images ({', '.join(images)}); --algo {algo} cannot finetune "
                          f"image policies (its buffers would hold every frame). Use --algo dsrl or --algo best_of_n, "
                          "which see the images through the policy's own frozen encoder")


def check_policy_task(policy: Any, spec: TaskSpec, source: str) -> None:
    """Refuse a policy made for another task: the checks `postbc eval` runs, then the sizes."""
    from postbc.envs.compat import check_dataset_matches_task

    if getattr(policy, "env_args", None):  # same keys and sizes but another env (drawer-open vs door-open)
        check_dataset_matches_task(policy.env_args, policy.obs_keys, policy.act_dim, spec,
                                   obs_dims=getattr(policy, "obs_dims", None), source=f"checkpoint {source}")
    if hasattr(policy, "check_task"):
        policy.check_task(spec)
    for what, mine, theirs in (("obs dim", policy.obs_dim, spec.obs_dim), ("action dim", policy.act_dim, spec.act_dim)):
        if int(mine) != int(theirs):
            raise PostBCError(f"checkpoint {source} has {what} {mine}, task '{spec.name}' has {what} {theirs}; "
                              "finetune on the task the policy was pretrained for")


def base_fingerprint(policy: Any) -> str | None:
    """A short hash of the pretrained policy's weights and normalizers; None for a policy without a torch model."""
    model = getattr(policy, "model", None)
    if not isinstance(model, torch.nn.Module):
        return None
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for normalizer in (getattr(policy, "obs_normalizer", None), getattr(policy, "action_normalizer", None)):
        for value in vars(normalizer).values() if normalizer is not None else ():
            if isinstance(value, np.ndarray):
                h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def check_base_fingerprint(policy: Any, expected: str | None, source: str, relation: str = "was finetuned from",
                           other_fix: str = "") -> None:
    """Refuse a base policy of the right sizes whose weights are not those the run was finetuned from."""
    mine = base_fingerprint(policy)
    if expected is not None and mine is not None and mine != expected:
        raise PostBCError(f"{source} {relation} a pretrained policy with weights {expected}, the given base "
                          f"policy has weights {mine} (same sizes, other weights); pass the pretrained policy the run "
                          f"was finetuned from (config.json's 'checkpoint' names it){other_fix}")


def check_chunk(expected: int, got: int, what: str, source: str) -> None:
    if int(expected) != int(got):
        raise PostBCError(f"{what} {source} uses action chunks of {got}, the pretrained policy predicts chunks of "
                          f"{expected}; use the matching checkpoint")


def base_actions(policy: Any, obs: np.ndarray | torch.Tensor, noise: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Deterministic chunk (B, chunk, act_dim) of the frozen policy from noise (B, chunk*act_dim) or (B, chunk, act_dim).

    A `PretrainedPolicy` computes on its own device and returns the chunk there (`act_tensor`);
    any other policy object (test puppets) gets numpy and returns a CPU tensor.
    """
    if hasattr(policy, "act_tensor"):
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        noise_t = torch.as_tensor(noise, dtype=torch.float32).reshape(len(obs_t), policy.chunk, policy.act_dim)
        with torch.no_grad():
            return policy.act_tensor(obs_t, noise_t)
    obs_np = obs.detach().cpu().numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs, np.float32)
    noise_np = noise.detach().cpu().numpy() if isinstance(noise, torch.Tensor) else np.asarray(noise, np.float32)
    noise_np = noise_np.reshape(len(obs_np), policy.chunk, policy.act_dim).astype(np.float32)
    with torch.no_grad():
        out = policy.act(obs_np, noise=noise_np)
    out = out.detach() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
    return out.to(torch.float32).reshape(len(obs_np), policy.chunk, policy.act_dim)


class SteeredPolicy:
    """A frozen base policy driven by a noise actor: the object `postbc.evaluation.evaluate` runs.

    `act(obs_flat)` -> (B, chunk, act_dim) = base(obs, w) with w = `noise_fn(obs)` (B, chunk*act_dim).
    """

    takes_noise = False  # the actor chooses the noise

    def __init__(self, base: Any, noise_fn):
        self.base, self.noise_fn = base, noise_fn
        self.chunk, self.act_dim = base.chunk, base.act_dim
        self.obs_keys = getattr(base, "obs_keys", None)

    def act(self, obs_flat: np.ndarray) -> np.ndarray:
        w = self.noise_fn(torch.as_tensor(np.asarray(obs_flat, np.float32)))
        return base_actions(self.base, obs_flat, w).cpu().numpy()


class SampledSteeredPolicy(SteeredPolicy):
    """A base policy driven by a stochastic noise actor: `noise_fn(obs, eps)` with eps ~ N(0, I).

    `act(obs_flat, noise=None)`: `noise` (B, chunk, act_dim) is the actor's eps, so that evaluation's
    per-episode seeded noise makes the stochastic actor reproducible; None draws it from torch.
    """

    takes_noise = True  # noise= is the actor's eps

    def act(self, obs_flat: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        eps = None if noise is None else torch.as_tensor(np.asarray(noise, np.float32)).reshape(len(obs_flat), -1)
        w = self.noise_fn(torch.as_tensor(np.asarray(obs_flat, np.float32)), eps)
        return base_actions(self.base, obs_flat, w).cpu().numpy()
