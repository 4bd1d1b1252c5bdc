"""Run several envs of one task side by side: worker processes, or in-process as a fallback.

Semantics (the same for both backends, so results do not depend on the backend):
- **Episodes are numbered** 0, 1, 2, ... in the order they start; `reset(seed=s)` starts
  episodes 0..num_envs-1 and every later episode takes the next number. Episode k is reset
  with `episode_seed(s, k)`, so the initial state of episode k depends only on (s, k), not on
  which env runs it or how many envs there are. `episode_index[i]` is env i's current episode.
- **Autoreset in the same step**: when env i's episode ends, `step` returns the first
  observation of its next episode; the finished episode's last observation is in
  `infos[i]["final_obs"]` and its summary in `infos[i]["episode"]`
  (`index`, `success`, `length` in env steps, `return`, `error`).
- **Crashes**: an env that raises during `step` (e.g. an unstable simulation), or whose worker
  process dies, ends its episode as a failure: `truncated=True`, reward 0,
  `infos[i]["env_error"]` names the error, `episode["error"]` too. The env is rebuilt and the
  run goes on. A reset that fails on 3 fresh envs in a row raises `PostBCError`.
- `infos` is a list with one dict per env (the env's own info plus `success`, and with
  `chunk` set, `env_steps` and `step_rewards` from `ActionChunkWrapper`).
- Observations are dicts of stacked arrays (num_envs, d) per obs key; `flatten_obs(obs, keys)`
  turns them into the (num_envs, obs_dim) matrix policies take.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from postbc.envs.chunking import ActionChunkWrapper
from postbc.envs.episodes import EPISODE_ENDS, RunToHorizon
from postbc.envs.registry import TaskSpec, get_task
from postbc.errors import PostBCError

RESET_ATTEMPTS = 3
WORKER_START_TIMEOUT_S = 300.0
BACKENDS = ("auto", "async", "sync")


def episode_seed(seed: int, index: int, stream: int = 0) -> int:
    """A 32-bit seed for episode `index` of a run seeded with `seed` (`stream` separates uses: env, policy, ...)."""
    return int(np.random.SeedSequence([int(seed) % 2**63, int(index), int(stream)]).generate_state(1)[0])


def resolve_task(task: str | TaskSpec) -> TaskSpec:
    return task if isinstance(task, TaskSpec) else get_task(task)


class _EnvSlot:
    """One env and its current episode: builds it, rebuilds it after a crash, keeps the episode's tally."""

    def __init__(self, make: Callable[..., Any], chunk: int | None, env_kwargs: Mapping[str, Any],
                 run_to: int | None = None):
        self._make = make
        self._chunk = chunk
        self._env_kwargs = dict(env_kwargs)
        self._run_to = run_to
        self.env = None
        self.build()

    def build(self) -> None:
        env = self._make(**self._env_kwargs)
        if self._run_to:
            env = RunToHorizon(env, self._run_to)
        self.env = ActionChunkWrapper(env, self._chunk) if self._chunk else env

    def _discard(self) -> None:
        try:
            if self.env is not None:
                self.env.close()
        except Exception:  # noqa: BLE001 - a crashed simulator may fail to close too; it is dropped anyway
            pass
        self.env = None

    def reset(self, seed: int, index: int):
        errors = []
        for _ in range(RESET_ATTEMPTS):
            try:
                if self.env is None:
                    self.build()
                obs, info = self.env.reset(seed=seed)
                break
            except Exception as e:  # noqa: BLE001 - any simulator error: rebuild and retry
                errors.append(_describe(e))
                self._discard()
        else:
            raise PostBCError(
                f"the env could not be reset for episode {index} (seed {seed}) on {RESET_ATTEMPTS} fresh envs; "
                f"last error: {errors[-1]}"
            )
        self.index, self.length, self.ret, self.success, self.last_obs = index, 0, 0.0, False, obs
        return obs, info

    def step(self, action):
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        except Exception as e:  # noqa: BLE001 - an unstable simulation ends the episode as a failure
            self._discard()
            return self.crashed(_describe(e))
        self.length += int(info.get("env_steps", 1))
        self.ret += float(reward)
        self.success = self.success or bool(info.get("success", False))
        self.last_obs = obs
        info = dict(info, success=bool(info.get("success", False)))
        if terminated or truncated:
            info["episode"] = self.summary(None)
        return obs, float(reward), bool(terminated), bool(truncated), info

    def crashed(self, error: str):
        info = {"success": False, "env_error": error, "episode": self.summary(error), "env_steps": 0}
        return self.last_obs, 0.0, False, True, info

    def summary(self, error: str | None) -> dict[str, Any]:
        return {"index": self.index, "success": self.success and error is None, "length": self.length,
                "return": self.ret, "error": error}

    def close(self) -> None:
        self._discard()


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _run(slot: _EnvSlot, cmd: str, arg: Any):
    if cmd == "reset":
        return slot.reset(*arg)
    if cmd == "step":
        return slot.step(arg)
    if cmd == "call":
        return arg(slot.env)
    raise ValueError(f"unknown command {cmd!r}")


def _worker(conn, make, chunk, env_kwargs, run_to) -> None:
    try:
        slot = _EnvSlot(make, chunk, env_kwargs, run_to)
    except BaseException as e:  # noqa: BLE001 - report why the env could not be built, then stop
        conn.send(("error", f"{_describe(e)}\n{traceback.format_exc()}"))
        conn.close()
        return
    conn.send(("ok", None))
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "close":
                slot.close()
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", _run(slot, cmd, arg)))
            except PostBCError as e:
                conn.send(("error", str(e)))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        slot.close()


@contextmanager
def _single_threaded_children():
    """Worker processes inherit the environment at start: keep each one's BLAS/OpenMP to one thread."""
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _ProcessSlot:
    """An `_EnvSlot` living in its own process; `send` then `recv` so that all envs work at once."""

    def __init__(self, ctx, make, chunk, env_kwargs, run_to):
        self._args = (ctx, make, chunk, env_kwargs, run_to)
        self._start()

    def _start(self) -> None:
        ctx, *args = self._args
        self.conn, child = ctx.Pipe()
        with _single_threaded_children():
            self.process = ctx.Process(target=_worker, args=(child, *args), daemon=True)
            self.process.start()
        child.close()
        self.pending: tuple | None = None

    def wait_ready(self) -> None:
        if not self.conn.poll(WORKER_START_TIMEOUT_S):
            raise RuntimeError(f"env worker did not start within {WORKER_START_TIMEOUT_S:.0f} s")
        status, msg = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"env worker failed to build the env: {msg}")

    def send(self, cmd: str, arg: Any) -> None:
        self.pending = (cmd, arg)
        if cmd == "reset":
            self.index, self.length = arg[1], 0
        try:
            self.conn.send((cmd, arg))
        except (BrokenPipeError, OSError):
            pass  # noticed in recv

    def recv(self):
        try:
            status, result = self.conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            return self._died()
        if status != "ok":
            raise PostBCError(result)
        if self.pending[0] == "step":
            self.length += int(result[4].get("env_steps", 1))
        return result

    def _died(self):
        """The worker process died mid-command (e.g. a simulator segfault): start a new one."""
        cmd, _ = self.pending
        code = self.process.exitcode
        self.process.join(timeout=1)
        self._start()
        self.wait_ready()
        error = f"env worker process died (exit code {code})"
        if cmd != "step":
            raise PostBCError(f"{error} during '{cmd}'")
        # The episode is lost with the process: report it as crashed; the caller resets this slot next.
        episode = {"index": self.index, "success": False, "length": self.length, "return": 0.0, "error": error}
        return None, 0.0, False, True, {"success": False, "env_error": error, "env_steps": 0, "episode": episode}

    def close(self) -> None:
        try:
            self.conn.send(("close", None))
            if self.conn.poll(5):
                self.conn.recv()
        except (BrokenPipeError, EOFError, OSError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self.conn.close()


class VectorEnv:
    """`num_envs` envs of one task; see the module docstring for autoreset, seeding and crashes.

    `chunk`: wrap each env in `ActionChunkWrapper(env, chunk)`, so `step` takes (num_envs, chunk, act_dim).
    `backend`: "async" (one worker process per env), "sync" (all in this process), or "auto"
    (async when num_envs > 1 and the task is not marked `in_process`, falling back to sync with a
    warning when workers cannot start).
    `episode_end`: "success" (the registry's episodes, as evaluation runs them) or "horizon"
    (`postbc.envs.episodes.RunToHorizon`: episodes run `spec.horizon` steps, reward 1 while solved).
    """

    def __init__(
        self,
        task: str | TaskSpec,
        num_envs: int,
        *,
        seed: int = 0,
        chunk: int | None = None,
        backend: str = "auto",
        env_kwargs: Mapping[str, Any] | None = None,
        context: str = "spawn",
        episode_end: str = "success",
    ):
        if backend not in BACKENDS:
            raise PostBCError(f"backend={backend!r} is not allowed; choose one of {', '.join(BACKENDS)}")
        if episode_end not in EPISODE_ENDS:
            raise PostBCError(f"episode_end={episode_end!r} is not allowed; choose one of {', '.join(EPISODE_ENDS)}")
        if num_envs < 1:
            raise PostBCError(f"num_envs={num_envs} must be >= 1")
        self.spec = resolve_task(task)
        self.num_envs = int(num_envs)
        self.chunk = chunk
        self.seed = int(seed)
        env_kwargs = dict(env_kwargs or {})
        self._run_to = self.spec.horizon if episode_end == "horizon" else None
        self.episode_index = np.arange(self.num_envs)
        self._next_episode = self.num_envs
        self._last_obs: list[Any] = [None] * self.num_envs
        self._pending: list[tuple[int, str, Any]] | None = None  # the step sent by step_async, not yet collected
        self.backend = "sync" if backend == "auto" and (self.num_envs == 1 or self.spec.in_process) else backend
        if self.backend in ("auto", "async"):
            try:
                self._slots = self._start_workers(mp.get_context(context), env_kwargs)
                self.backend = "async"
            except Exception as e:  # noqa: BLE001 - auto falls back to in-process envs, async reports why
                if self.backend == "async":
                    raise PostBCError(f"could not start env worker processes for task '{self.spec.name}': {e}") from e
                warnings.warn(f"env worker processes could not start ({e}); running envs in this process", stacklevel=2)
                self.backend = "sync"
        if self.backend == "sync":
            self._slots = [_EnvSlot(self.spec.make, chunk, env_kwargs, self._run_to) for _ in range(self.num_envs)]

    def _start_workers(self, ctx, env_kwargs) -> list[_ProcessSlot]:
        slots: list[_ProcessSlot] = []
        try:
            for _ in range(self.num_envs):
                slots.append(_ProcessSlot(ctx, self.spec.make, self.chunk, env_kwargs, self._run_to))
            for s in slots:
                s.wait_ready()
        except BaseException:
            for s in slots:
                s.close()
            raise
        return slots

    # --- the two backends behind one pair of helpers -------------------------------------------
    def _send_all(self, cmds: Sequence[tuple[int, str, Any]]) -> None:
        """Start the commands; worker processes run them while this process goes on."""
        if self.backend != "sync":
            for i, cmd, arg in cmds:
                self._slots[i].send(cmd, arg)

    def _recv_all(self, cmds: Sequence[tuple[int, str, Any]]) -> list[Any]:
        """The results of `_send_all(cmds)` (in-process envs run the commands here)."""
        if self.backend == "sync":
            return [_run(self._slots[i], cmd, arg) for i, cmd, arg in cmds]
        return [self._slots[i].recv() for i, _, _ in cmds]

    def _call_all(self, cmds: Sequence[tuple[int, str, Any]]) -> list[Any]:
        self._send_all(cmds)
        return self._recv_all(cmds)

    # --- gymnasium-like API ------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start episodes 0..num_envs-1 (numbering restarts); `seed` replaces the constructor's seed."""
        if seed is not None:
            self.seed = int(seed)
        self.episode_index = np.arange(self.num_envs)
        self._next_episode = self.num_envs
        results = self._call_all([(i, "reset", (episode_seed(self.seed, i), i)) for i in range(self.num_envs)])
        self._last_obs = [obs for obs, _ in results]
        return self._stack(self._last_obs)

    def step(self, actions: np.ndarray):
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: np.ndarray) -> None:
        """Send one step's actions; with worker processes the envs step while the caller works (`step_wait` collects)."""
        if self._pending is not None:
            raise RuntimeError("step_async called twice without step_wait")
        actions = np.asarray(actions, dtype=np.float32)
        act_dim = self.spec.act_dim
        if self.chunk:
            ok = actions.ndim == 3 and actions.shape[2] == act_dim and 1 <= actions.shape[1] <= self.chunk
            expected = f"({self.num_envs}, n <= {self.chunk}, {act_dim})"
        else:
            ok = actions.ndim == 2 and actions.shape[1] == act_dim
            expected = f"({self.num_envs}, {act_dim})"
        # Checked here: inside the envs a malformed action would count as a simulator crash.
        if not ok or actions.shape[0] != self.num_envs:
            raise ValueError(f"actions have shape {actions.shape}; this VectorEnv takes {expected}")
        self._pending = [(i, "step", actions[i]) for i in range(self.num_envs)]
        self._send_all(self._pending)

    def step_wait(self):
        """The results of the last `step_async`, with finished episodes reset (see the module docstring)."""
        if self._pending is None:
            raise RuntimeError("step_wait called without step_async")
        cmds, self._pending = self._pending, None
        results = self._recv_all(cmds)
        obs_list, infos = [], []
        rewards = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        for i, (obs, reward, term, trunc, info) in enumerate(results):
            if obs is None:  # the worker process died: its last observation is the one we have
                obs = self._last_obs[i]
            obs_list.append(obs)
            rewards[i], terminated[i], truncated[i] = reward, term, trunc
            infos.append(info)
        done = [i for i in range(self.num_envs) if terminated[i] or truncated[i]]
        if done:
            new = []
            for i in done:
                infos[i]["final_obs"] = obs_list[i]
                new.append((i, "reset", (episode_seed(self.seed, self._next_episode), self._next_episode)))
                self.episode_index[i] = self._next_episode
                self._next_episode += 1
            for (i, _, _), (obs, _) in zip(new, self._call_all(new)):
                obs_list[i] = obs
        self._last_obs = obs_list
        return self._stack(obs_list), rewards, terminated, truncated, infos

    def call(self, fn: Callable[[Any], Any]) -> list[Any]:
        """Apply a picklable `fn(env)` to every env (in its process); returns the results."""
        return self._call_all([(i, "call", fn) for i in range(self.num_envs)])

    def _stack(self, obs_list: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.stack([np.asarray(o[k]) for o in obs_list]) for k in obs_list[0]}

    def close(self) -> None:
        for s in getattr(self, "_slots", []):
            s.close()
        self._slots = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
