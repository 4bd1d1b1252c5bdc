"""Roll out a policy for a fixed number of episodes and report its success rate.

Exactly episodes 0..N-1 count (numbered as in `postbc.envs.vector`), never "the first N to
finish", which would over-count short (successful) episodes. Episode k starts from
`episode_seed(seed, k)`; when the policy's `act` takes a `noise` argument (diffusion policies
do), its noise for episode k is drawn from a generator seeded by (seed, k) as well. So the
same seed gives the same episodes for any `num_envs` and backend (up to floating-point
differences of batched network evaluation).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import sys
import time
from typing import Any, Iterator, Mapping, Protocol, Sequence

import numpy as np

from postbc.envs.registry import TaskSpec, flatten_obs
from postbc.envs.vector import VectorEnv, episode_seed, resolve_task
from postbc.errors import PostBCError
from postbc.stats import wilson_interval
from postbc.utils import progress

POLICY_NOISE_STREAM = 1


class ChunkPolicy(Protocol):
    """What evaluation runs. `takes_noise`: `act` accepts `noise=` (B, chunk, act_dim) N(0, I) draws, which
    evaluation seeds per episode (diffusion policies sampled from their initial noise); a policy that
    draws or computes its own says False. A policy without the attribute is asked by its signature."""

    chunk: int
    takes_noise: bool

    def act(self, obs_flat: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:  # (B, obs_dim) -> (B, chunk, act_dim)
        ...


@dataclasses.dataclass
class EvalResult:
    task: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float  # Wilson 95% interval of the success rate
    ci_high: float
    mean_length: float  # env steps per episode (successful episodes end at success)
    env_steps: int  # all env steps taken, including those of episodes past N that were cut off
    env_time_s: float  # wall time inside env reset/step calls
    policy_time_s: float  # wall time inside policy.act
    wall_time_s: float
    crashed_episodes: int  # episodes ended by a simulator error (counted as failures)
    seed: int
    num_envs: int
    episode_success: list[bool] = dataclasses.field(repr=False)
    episode_length: list[int] = dataclasses.field(repr=False)
    errors: list[str] = dataclasses.field(default_factory=list, repr=False)
    episode_task: list[str] = dataclasses.field(default_factory=list, repr=False)  # multi-task envs: info["task"]

    def per_task(self) -> dict[str, dict[str, float]]:
        """A multi-task env's episodes by task: episodes, successes, rate and Wilson 95% interval ({} for one task)."""
        out = {}
        for name in dict.fromkeys(self.episode_task):
            wins = [s for s, t in zip(self.episode_success, self.episode_task) if t == name]
            low, high = wilson_interval(sum(wins), len(wins))
            out[name] = {"episodes": len(wins), "successes": sum(wins), "success_rate": sum(wins) / len(wins),
                         "ci_low": low, "ci_high": high}
        return out

    def task_columns(self, prefix: str, tasks: Sequence[str]) -> dict[str, float]:
        """Metrics columns `<prefix>_success_<task>` for every task of a multi-task env (NaN where no episode drew it)."""
        per_task = self.per_task()
        return {f"{prefix}_success_{t}": per_task[t]["success_rate"] if t in per_task else math.nan for t in tasks}

    @property
    def policy_overhead(self) -> float:
        """Policy time as a fraction of env time."""
        return self.policy_time_s / self.env_time_s if self.env_time_s > 0 else float("nan")

    @property
    def env_steps_per_s(self) -> float:
        return self.env_steps / self.env_time_s if self.env_time_s > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(policy_overhead=self.policy_overhead, env_steps_per_s=self.env_steps_per_s)
        if self.episode_task:
            d["per_task"] = self.per_task()
        return d

    def summary(self) -> str:
        return (
            f"{self.task}: success {self.success_rate:.1%} [{self.ci_low:.1%}, {self.ci_high:.1%}] "
            f"over {self.episodes} episodes, mean length {self.mean_length:.1f}, "
            f"{self.env_steps_per_s:.0f} env steps/s, policy overhead {self.policy_overhead:.1%} of env time"
            + (f", {self.crashed_episodes} crashed" if self.crashed_episodes else "")
            + "".join(f"\n  {name}: success {r['success_rate']:.1%} [{r['ci_low']:.1%}, {r['ci_high']:.1%}] over "
                      f"{r['episodes']} episodes" for name, r in self.per_task().items())
        )


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    torch = sys.modules.get("torch")  # a policy that does not use torch needs no setting
    if n is None or torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _takes_noise(policy: Any) -> bool:
    declared = getattr(policy, "takes_noise", None)
    if declared is not None:
        return bool(declared)
    try:  # a policy written outside postbc: does its act have a noise argument?
        return "noise" in inspect.signature(policy.act).parameters
    except (TypeError, ValueError):
        return False


def evaluate(
    policy: ChunkPolicy,
    task: str | TaskSpec,
    episodes: int = 200,
    seed: int = 0,
    num_envs: int = 1,
    *,
    backend: str = "auto",
    obs_keys: tuple[str, ...] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    torch_threads: int | None = 1,
    quiet: bool = False,
) -> EvalResult:
    """Success rate of `policy` on `task` over `episodes` episodes (see module docstring).

    `obs_keys`: order in which the policy reads the observation (default: the policy's
    `obs_keys` attribute if it has one, else the task's).
    `torch_threads`: torch's intra-op threads while evaluating (None: unchanged). 1 by default:
    the env workers occupy the other cores, and oversubscribed OpenMP threads made a diffusion
    policy's `act` 10-50x slower on a busy 2-core machine (1.5-6 ms -> 35-150 ms).
    """
    if episodes < 1:
        raise PostBCError(f"episodes={episodes} must be >= 1")
    spec = resolve_task(task)
    keys = tuple(obs_keys or getattr(policy, "obs_keys", None) or spec.obs_keys)
    chunk = int(getattr(policy, "chunk", 1))
    act_dim = int(getattr(policy, "act_dim", spec.act_dim))
    if act_dim != spec.act_dim:
        raise PostBCError(f"policy acts in {act_dim} dimensions, task '{spec.name}' takes {spec.act_dim}")
    use_noise = _takes_noise(policy)
    num_envs = max(1, min(num_envs, episodes))

    success: dict[int, bool] = {}
    length: dict[int, int] = {}
    task_of: dict[int, str] = {}
    errors: list[str] = []
    env_steps = 0
    env_time = policy_time = 0.0
    t_start = time.perf_counter()
    with _torch_threads(torch_threads), \
            VectorEnv(spec, num_envs, seed=seed, chunk=chunk, backend=backend, env_kwargs=env_kwargs) as vec:
        t0 = time.perf_counter()
        obs = vec.reset()
        env_time += time.perf_counter() - t0
        rngs = [np.random.default_rng(episode_seed(seed, k, POLICY_NOISE_STREAM)) for k in vec.episode_index]
        bar = progress(range(episodes), desc=f"eval {spec.name}", quiet=quiet)
        bar_iter = iter(bar)
        while len(success) < episodes:
            t0 = time.perf_counter()
            flat = flatten_obs(obs, keys)
            if use_noise:
                noise = np.stack([r.standard_normal((chunk, spec.act_dim)).astype(np.float32) for r in rngs])
                actions = policy.act(flat, noise=noise)
            else:
                actions = policy.act(flat)
            actions = _as_numpy(actions)
            policy_time += time.perf_counter() - t0
            if actions.shape[0] != num_envs or actions.shape[-1] != spec.act_dim:
                raise PostBCError(
                    f"policy returned actions of shape {actions.shape}; expected ({num_envs}, {chunk}, {spec.act_dim})"
                )
            t0 = time.perf_counter()
            obs, _, _, _, infos = vec.step(actions.reshape(num_envs, -1, spec.act_dim))
            env_time += time.perf_counter() - t0
            for i, info in enumerate(infos):
                env_steps += int(info.get("env_steps", 1))
                ep = info.get("episode")
                if ep is None:
                    continue
                rngs[i] = np.random.default_rng(episode_seed(seed, int(vec.episode_index[i]), POLICY_NOISE_STREAM))
                if ep["index"] < episodes:
                    success[ep["index"]] = bool(ep["success"])
                    length[ep["index"]] = int(ep["length"])
                    if "task" in info:
                        task_of[ep["index"]] = str(info["task"])
                    if ep["error"]:
                        errors.append(f"episode {ep['index']}: {ep['error']}")
                    next(bar_iter, None)
        getattr(bar, "close", lambda: None)()
    wall = time.perf_counter() - t_start

    ks = range(episodes)
    n_success = sum(success[k] for k in ks)
    low, high = wilson_interval(n_success, episodes)
    return EvalResult(
        task=spec.name,
        episodes=episodes,
        successes=n_success,
        success_rate=n_success / episodes,
        ci_low=low,
        ci_high=high,
        mean_length=float(np.mean([length[k] for k in ks])),
        env_steps=env_steps,
        env_time_s=env_time,
        policy_time_s=policy_time,
        wall_time_s=wall,
        crashed_episodes=len(errors),
        seed=seed,
        num_envs=num_envs,
        episode_success=[success[k] for k in ks],
        episode_length=[length[k] for k in ks],
        errors=errors,
        episode_task=[task_of[k] for k in ks] if len(task_of) == episodes else [],
    )


def save_episode_strip(
    policy: ChunkPolicy, task: str | TaskSpec, path, seed: int = 0, frames: int = 8, image_size: int = 160
) -> int:
    """Replay episode 0 of `evaluate(policy, task, seed=seed)` in a rendering env; save `frames` evenly
    spaced images side by side as one PNG. Returns the episode's length.

    Needs offscreen rendering: on a CPU-only machine set `MUJOCO_GL=egl` (Mesa's software EGL)
    before any simulator is imported.
    """
    import matplotlib.pyplot as plt

    from postbc.envs.chunking import ActionChunkWrapper

    spec = resolve_task(task)
    try:
        env = spec.make(render=True, image_size=image_size)
    except TypeError as e:
        raise PostBCError(f"task '{spec.name}' cannot render images ({e})") from e
    chunk = int(getattr(policy, "chunk", 1))
    keys = tuple(getattr(policy, "obs_keys", None) or spec.obs_keys)
    rng = np.random.default_rng(episode_seed(seed, 0, POLICY_NOISE_STREAM))
    wrapped = ActionChunkWrapper(env, chunk)
    try:
        obs, _ = wrapped.reset(seed=episode_seed(seed, 0))
        images, length = [env.render()], 0
        while True:
            flat = flatten_obs(obs, keys)[None]
            if _takes_noise(policy):
                actions = policy.act(flat, noise=rng.standard_normal((1, chunk, spec.act_dim)).astype(np.float32))
            else:
                actions = policy.act(flat)
            obs, _, terminated, truncated, info = wrapped.step(_as_numpy(actions).reshape(-1, spec.act_dim))
            length += info["env_steps"]
            images.append(env.render())
            if terminated or truncated:
                break
    finally:
        wrapped.close()
    picks = np.linspace(0, len(images) - 1, min(frames, len(images))).round().astype(int)
    plt.imsave(path, np.concatenate([images[i] for i in picks], axis=1))
    return length


def _as_numpy(actions: Any) -> np.ndarray:
    if hasattr(actions, "detach"):
        actions = actions.detach().cpu().numpy()
    return np.asarray(actions, dtype=np.float32)
