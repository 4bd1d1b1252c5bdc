"""How a training episode ends: at success (evaluation, Best-of-N) or at the horizon (DSRL, DPPO).

Registered envs end an episode on the step the task is solved (`terminated`), which is what
evaluation wants: success is counted at its first occurrence and no step is wasted after it.
The DSRL and DPPO reference implementations train on a different episode: it **never ends at
success**; it runs to the fixed horizon, and every step's task reward says whether the task is
solved *now* (robomimic's sparse reward, 1 while solved). DSRL then pays -1 per step while not
solved and 0 while solved.

Why it matters: SAC's soft TD target adds `-alpha * log pi` to every step that continues. If
success ends the episode, every chunk that does *not* succeed earns that entropy bonus once more,
and with a 28-dimensional noise action the bonus (4.6-19 per chunk) outweighs the step cost (-4):
SAC learns to avoid success. Run to the horizon, solved and unsolved steps get the same bonus and
success is always worth 4 per chunk more (tests/finetune/test_episode_trap.py shows both).
"""

from __future__ import annotations

import gymnasium as gym

EPISODE_ENDS = ("success", "horizon")


class RunToHorizon(gym.Wrapper):
    """Turn an env that terminates at success into one that runs `horizon` steps.

    - The episode is a finite-horizon task: it ends on step `horizon` with `terminated=True` (no
      bootstrapping past it), never earlier. So values stay within the horizon's sum of rewards.
      This is the reference's choice too: its chunk wrapper returns done at the time limit and
      Stable-Baselines3 stores that as terminal.
    - The reward of every step is 1.0 while the task is solved (`info["success"]`), else 0.0.
    - `info["success"]` is the env's own per-step flag; vector envs count an episode as a success
      when it was solved at any step, as evaluation does.
    An env that reports `truncated` before `horizon` (its own, shorter time limit) still ends there,
    as truncated.
    """

    def __init__(self, env: gym.Env, horizon: int):
        super().__init__(env)
        if horizon < 1:
            raise ValueError(f"horizon={horizon} must be >= 1")
        self.horizon = int(horizon)
        self._t = 0

    def reset(self, **kwargs):
        self._t = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, _, _, truncated, info = self.env.step(action)
        self._t += 1
        solved = bool(info.get("success", False))
        at_horizon = self._t >= self.horizon
        return obs, float(solved), at_horizon, bool(truncated) and not at_horizon, info
