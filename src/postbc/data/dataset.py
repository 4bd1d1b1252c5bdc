"""`DemoDataset`: demonstrations as flat arrays with episode boundaries, normalizers and chunks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from postbc.data.normalizer import MinMaxNormalizer
from postbc.data.robomimic import read_demos
from postbc.envs.cameras import is_image_key
from postbc.envs.registry import key_slices


@dataclasses.dataclass
class DemoDataset:
    """All samples of the selected demos, concatenated in demo order.

    `obs` (N, obs_dim) float32 raw: the `obs_keys` flattened in that order; `actions` (N, act_dim)
    float32 raw; sample i belongs to episode `episode_of[i]`, whose samples are
    `episode_starts[e] : episode_starts[e] + episode_lengths[e]`.
    """

    obs: np.ndarray
    actions: np.ndarray
    obs_keys: tuple[str, ...]
    obs_dims: tuple[int, ...]
    demo_names: list[str]
    episode_starts: np.ndarray
    episode_lengths: np.ndarray
    env_args: dict[str, Any]
    obs_normalizer: MinMaxNormalizer
    action_normalizer: MinMaxNormalizer
    path: Path | None = None
    demo_tasks: list[str | None] = dataclasses.field(default_factory=list)  # each demo's `task` attr (multi-task data)

    @classmethod
    def load(cls, path: Path, obs_keys: Sequence[str] | None = None, filter_key: str | None = None,
             max_demos: int | None = None) -> "DemoDataset":
        """Read and validate `path` (see `postbc.data.robomimic.read_demos` for the selection rules)."""
        f = read_demos(path, obs_keys=obs_keys, filter_key=filter_key, max_demos=max_demos)
        obs = np.concatenate([np.concatenate([d.obs[k].reshape(d.num_samples, -1) for k in f.obs_keys], axis=1) for d in f.demos])
        actions = np.concatenate([d.actions.reshape(d.num_samples, -1) for d in f.demos])
        lengths = np.array([d.num_samples for d in f.demos], dtype=np.int64)
        first = f.demos[0]
        return cls.from_arrays(
            obs, actions, lengths,
            obs_keys=f.obs_keys,
            obs_dims=tuple(int(np.prod(first.obs[k].shape[1:])) for k in f.obs_keys),
            demo_names=[d.name for d in f.demos],
            env_args=f.env_args,
            path=Path(path),
            demo_tasks=[d.attrs.get("task") for d in f.demos],
        )

    @classmethod
    def from_arrays(cls, obs: np.ndarray, actions: np.ndarray, episode_lengths: Sequence[int], *,
                    obs_keys: Sequence[str] = ("obs",), obs_dims: Sequence[int] | None = None,
                    demo_names: Sequence[str] | None = None, env_args: dict[str, Any] | None = None,
                    path: Path | None = None, demo_tasks: Sequence[str | None] | None = None) -> "DemoDataset":
        """Build a dataset from arrays already in memory (normalizers are fitted here)."""
        obs = np.asarray(obs, dtype=np.float32)
        actions = np.asarray(actions, dtype=np.float32)
        lengths = np.asarray(episode_lengths, dtype=np.int64)
        if obs.ndim != 2 or actions.ndim != 2 or len(obs) != len(actions) or lengths.sum() != len(obs) or np.any(lengths <= 0):
            raise ValueError(f"inconsistent arrays: obs {obs.shape}, actions {actions.shape}, episode lengths summing to {lengths.sum()}")
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(
            obs=obs,
            actions=actions,
            obs_keys=tuple(obs_keys),
            obs_dims=tuple(obs_dims) if obs_dims is not None else (obs.shape[1],),
            demo_names=list(demo_names) if demo_names is not None else [f"demo_{i}" for i in range(len(lengths))],
            episode_starts=starts,
            episode_lengths=lengths,
            env_args=dict(env_args or {}),
            obs_normalizer=obs_normalizer(obs, obs_keys, obs_dims),
            action_normalizer=MinMaxNormalizer.fit(actions),
            path=path,
            demo_tasks=list(demo_tasks) if demo_tasks is not None else [None] * len(lengths),
        )

    @property
    def num_samples(self) -> int:
        return int(self.obs.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_lengths.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def episode_of(self) -> np.ndarray:
        """(N,) index of the episode each sample belongs to."""
        return np.repeat(np.arange(self.num_episodes), self.episode_lengths)

    def normalized_obs(self) -> np.ndarray:
        return self.obs_normalizer.normalize(self.obs)

    def normalized_actions(self) -> np.ndarray:
        return self.action_normalizer.normalize(self.actions)

    def action_chunks(self, horizon: int) -> np.ndarray:
        """(N, horizon, act_dim) normalized: the actions taken from each sample on, padded past the
        episode end by repeating the episode's last action."""
        if horizon < 1:
            raise ValueError(f"chunk horizon must be >= 1, got {horizon}")
        last = (self.episode_starts + self.episode_lengths - 1)[self.episode_of]
        index = np.minimum(np.arange(self.num_samples)[:, None] + np.arange(horizon)[None, :], last[:, None])
        return self.normalized_actions()[index]

    def __repr__(self) -> str:
        return (f"DemoDataset({self.num_episodes} demos, {self.num_samples} samples, obs_keys={list(self.obs_keys)}, "
                f"obs_dim={self.obs_dim}, act_dim={self.act_dim}, path={self.path})")


def obs_normalizer(obs: np.ndarray, obs_keys: Sequence[str], obs_dims: Sequence[int] | None) -> MinMaxNormalizer:
    """Min-max bounds of the data, except image keys: their pixels map from the fixed range [0, 255]
    (per-pixel bounds would stretch a pixel that barely changes into [-1, 1])."""
    fitted = MinMaxNormalizer.fit(obs)
    if obs_dims is None or not any(is_image_key(k) for k in obs_keys):
        return fitted
    low, high = fitted.low.copy(), fitted.high.copy()
    for key, part in key_slices(obs_keys, obs_dims):
        if is_image_key(key):
            low[part], high[part] = 0.0, 255.0
    return MinMaxNormalizer(low, high)
