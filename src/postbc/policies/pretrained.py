"""A pretrained policy as everything downstream uses it: raw observations in, raw action chunks out.

`PretrainedPolicy` bundles the diffusion policy's (EMA) weights with what is needed to run it on
an env: the observation / action normalizers, the observation keys in flattening order and the
dataset's `env_args`. It is saved as one checkpoint (`policy.safetensors` + `policy.json`), and
loading refuses files that do not fit: another checkpoint kind or format, missing or misshapen
weights, normalizers of the wrong size. `check_task` refuses an env the policy was not made for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from postbc.data.normalizer import MinMaxNormalizer
from postbc.envs.registry import TaskSpec
from postbc.errors import PostBCError
from postbc.io.checkpoint import check_shapes, checkpoint_paths, load_checkpoint, save_checkpoint
from postbc.io.config import from_jsonable, to_jsonable
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy

CHECKPOINT_KIND = "postbc.pretrained_policy"
POLICY_FORMAT = 1
POLICY_STEM = "policy"


class PretrainedPolicy:
    """A diffusion policy with its normalizers; `act` maps raw flat observations to raw action chunks."""

    takes_noise = True  # act(obs, noise=): DDIM from the given initial noise

    def __init__(
        self,
        model: DiffusionPolicy,
        obs_normalizer: MinMaxNormalizer,
        action_normalizer: MinMaxNormalizer,
        obs_keys: tuple[str, ...],
        obs_dims: tuple[int, ...],
        env_args: Mapping[str, Any],
        config: Mapping[str, Any] | None = None,
        tasks: tuple[str, ...] = (),
        task_table: Mapping[str, Mapping[str, list[float]]] | None = None,
    ):
        """`tasks`: the tasks of multi-task training data; `task_table`: its per-task keys (postbc.data.task_keys)."""
        cfg = model.cfg
        for what, got, want in (
            ("observation normalizer", obs_normalizer.dim, cfg.obs_dim),
            ("action normalizer", action_normalizer.dim, cfg.act_dim),
            ("sum of obs_dims", sum(obs_dims), cfg.obs_dim),
        ):
            if got != want:
                raise PostBCError(f"policy: {what} has size {got}, the model expects {want}; the checkpoint is inconsistent")
        if len(obs_keys) != len(obs_dims):
            raise PostBCError(f"policy: {len(obs_keys)} obs keys {list(obs_keys)} but {len(obs_dims)} obs dims {list(obs_dims)}")
        self.model = model.eval()
        self.obs_normalizer, self.action_normalizer = obs_normalizer, action_normalizer
        self.obs_keys, self.obs_dims = tuple(obs_keys), tuple(int(d) for d in obs_dims)
        self.env_args = dict(env_args)
        self.config = dict(config or {})
        self.tasks = tuple(tasks)
        self.task_table = {k: dict(v) for k, v in (task_table or {}).items()}

    @property
    def chunk(self) -> int:
        return self.model.cfg.chunk

    @property
    def act_dim(self) -> int:
        return self.model.cfg.act_dim

    @property
    def obs_dim(self) -> int:
        return self.model.cfg.obs_dim

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> "PretrainedPolicy":
        """Move the model to `device` (in place); observations and actions stay numpy on the CPU side."""
        self.model.to(device)
        return self

    # -- acting ------------------------------------------------------------------------------------
    def act(
        self,
        obs: np.ndarray,
        noise: np.ndarray | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        steps: int | None = None,
    ) -> np.ndarray:
        """(B, chunk, act_dim) raw actions for raw flat observations `obs` (B, obs_dim), by DDIM.

        Deterministic given `noise` (B, chunk, act_dim) (or (B, chunk * act_dim)); N(0, I) noise from
        `generator` when it is None. `steps` overrides the number of DDIM steps.
        """
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise PostBCError(
                f"policy.act expects observations of shape (B, {self.obs_dim}) (keys {list(self.obs_keys)} flattened), "
                f"got {obs.shape}"
            )
        batch = obs.shape[0]
        shape = (batch, self.chunk, self.act_dim)
        if noise is None:
            noise = torch.randn(shape, generator=generator)  # drawn on the CPU: the same actions on every device
        else:
            noise = torch.as_tensor(noise, dtype=torch.float32)
            if noise.numel() != batch * self.chunk * self.act_dim:
                raise PostBCError(f"policy.act: noise has shape {tuple(noise.shape)}, expected {shape}")
        with torch.inference_mode():
            actions = self.act_tensor(torch.from_numpy(obs), noise.reshape(shape), steps)
        return actions.cpu().numpy()

    def act_tensor(self, obs: torch.Tensor, noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """`act` on tensors, computed on the model's device: raw obs (B, obs_dim), noise (B, chunk, act_dim) ->
        raw actions (B, chunk, act_dim) on that device (no shape checks; finetuning's inner loops call it)."""
        device = self.device
        obs = self.obs_normalizer.normalize(obs.to(device, torch.float32))
        actions = self.model.sample_ddim(obs, noise.to(device, torch.float32), steps)
        return self.action_normalizer.unnormalize(actions)

    def check_task(self, spec: TaskSpec) -> None:
        """Refuse a task whose observation keys, sizes or action size differ from the policy's."""
        mine = dict(zip(self.obs_keys, self.obs_dims))
        theirs = dict(zip(spec.obs_keys, spec.obs_dims))
        problems = []
        if tuple(spec.obs_keys) != self.obs_keys:
            problems.append(f"obs keys: policy {list(self.obs_keys)}, task {list(spec.obs_keys)}")
        elif mine != theirs:
            problems.append(f"obs dims: policy {mine}, task {theirs}")
        if spec.act_dim != self.act_dim:
            problems.append(f"action dim: policy {self.act_dim}, task {spec.act_dim}")
        if problems:
            raise PostBCError(
                f"the pretrained policy does not fit task '{spec.name}' ({'; '.join(problems)}); "
                "use a policy pretrained on demos of this task"
            )

    # -- files -------------------------------------------------------------------------------------
    def save(self, stem: Path, extra: Mapping[str, Any] | None = None) -> None:
        """Write `stem`.safetensors (model weights) + `stem`.json (everything else), atomically."""
        meta = {
            "kind": CHECKPOINT_KIND,
            "policy_format": POLICY_FORMAT,
            "diffusion": to_jsonable(self.model.cfg),
            "obs_normalizer": self.obs_normalizer.to_dict(),
            "action_normalizer": self.action_normalizer.to_dict(),
            "obs_keys": list(self.obs_keys),
            "obs_dims": list(self.obs_dims),
            "env_args": self.env_args,
            "config": self.config,
            "tasks": list(self.tasks),
            "task_table": self.task_table,
            **(extra or {}),
        }
        save_checkpoint(stem, self.model.state_dict(), meta)

    @classmethod
    def load(cls, path: Path, device: torch.device | str | None = None) -> "PretrainedPolicy":
        """Load from a pretraining run directory (its `policy.*`) or a checkpoint stem / file, onto `device` (CPU)."""
        path = Path(path)
        if path.suffix.lower() in (".hdf5", ".h5") and path.is_file():
            raise PostBCError(f"{path} is a dataset, not a pretrained policy; pretrain on it first "
                              f"(postbc pretrain --dataset {path} --out RUN) and pass RUN")
        if not path.exists() and not checkpoint_paths(path.with_suffix("") if path.suffix in (".json", ".safetensors")
                                                      else path)[1].exists():
            raise PostBCError(f"checkpoint {path} does not exist (no run directory or checkpoint file there); pass the "
                              "--out directory of a `postbc pretrain` run")
        if path.is_dir():
            stem = path / POLICY_STEM
        elif path.suffix in (".json", ".safetensors"):
            stem = path.with_suffix("")
        else:
            stem = path
        meta_path = checkpoint_paths(stem)[1]
        if path.is_dir() and not meta_path.exists():
            raise PostBCError(
                f"{path} holds no {POLICY_STEM}.json / {POLICY_STEM}.safetensors: the pretraining run has not finished; "
                "re-run the same `postbc pretrain` command to resume it"
            )
        tensors, meta = load_checkpoint(stem)
        if meta.get("kind") != CHECKPOINT_KIND:
            raise PostBCError(f"{meta_path} is a '{meta.get('kind')}' checkpoint, not a pretrained policy ({CHECKPOINT_KIND})")
        if meta.get("policy_format") != POLICY_FORMAT:
            raise PostBCError(
                f"{meta_path} has policy format {meta.get('policy_format')}, this postbc reads format {POLICY_FORMAT}; "
                "re-create it by pretraining again with this version"
            )
        try:
            cfg = from_jsonable(DiffusionConfig, meta["diffusion"])
        except (KeyError, TypeError, ValueError) as e:
            raise PostBCError(f"{meta_path}: the diffusion config is missing or invalid ({e})") from e
        model = DiffusionPolicy(cfg)
        check_shapes(tensors, {k: v.shape for k, v in model.state_dict().items()}, str(checkpoint_paths(stem)[0]))
        model.load_state_dict(tensors)
        if device is not None:
            model.to(device)
        return cls(
            model,
            MinMaxNormalizer.from_dict(meta["obs_normalizer"]),
            MinMaxNormalizer.from_dict(meta["action_normalizer"]),
            tuple(meta["obs_keys"]),
            tuple(meta["obs_dims"]),
            meta["env_args"],
            meta.get("config"),
            tasks=tuple(meta.get("tasks", ())),
            task_table=meta.get("task_table"),
        )
