"""Where square fails: the phase of the task each rollout reached, and PostBC's posterior std by phase.

A square episode is solved when the nut sits down on the peg (robosuite's `on_peg`: nut centre within 3 cm of
the peg's axis in x and y and below 5 cm above the table) and the gripper has let go. Its phases, read from the
observation (the nut's world position, `object[7:10]`, and the peg at `PEG_XY`):
- `on table`: the nut has not risen 2 cm above where the episode found it and is away from the peg;
- `carried`: it has risen at least 2 cm and is more than 3 cm (in x and y) from the peg;
- `over peg`: within 3 cm of the peg, above the 5 cm of `on_peg`;
- `on peg`: within 3 cm of the peg and below those 5 cm (success once the gripper lets go).

`--checkpoint RUN ...` rolls each pretrained policy out on the first `--episodes` episodes of
`postbc evaluate --seed` (the same initial states and sampler noise: each episode's success is checked against
the run's `eval.json` when `--eval-dir` holds it) and prints how far each episode got: the furthest phase
reached, in the order above, and how far from the nut's handle, and at what yaw, the hand was when the policy
first commanded the gripper closed. `--posterior RUN` prints a PostBC run's posterior std (per sample, root of the mean
variance over the chunk's coordinates, in normalized action units) over its demos' states by phase. Example:

    python benchmarks/square_failures.py --posterior runs/claims_square/pretrain/square-d30-postbc-s0 \
        --checkpoint runs/claims_square/pretrain/square-d30-bc-s0 runs/claims_square/pretrain/square-d30-postbc-s0 \
        --eval-dir runs/claims_square/eval --episodes 100
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from postbc.envs.robosuite_tasks import OBJECT_POSE
from postbc.experts.robosuite_experts import PEG_XY, TABLE_Z

PHASES = ("on table", "carried", "over peg", "on peg")
FURTHEST = PHASES + ("solved",)
NUT_POS = OBJECT_POSE["square"][0]  # the nut's world position inside square's `object` observation
PEG_TOLERANCE = 0.03  # robosuite NutAssembly.on_peg: |dx|, |dy| < 3 cm ...
ON_PEG_HEIGHT = 0.05  # ... and the nut's centre below the table + 5 cm
LIFTED = 0.02


def phase_of(nut: np.ndarray, start_z: float | np.ndarray) -> np.ndarray:
    """(N, 3) nut positions -> (N,) index into PHASES."""
    nut = np.atleast_2d(nut)
    near_peg = np.all(np.abs(nut[:, :2] - PEG_XY) < PEG_TOLERANCE, axis=1)
    low = nut[:, 2] < TABLE_Z + ON_PEG_HEIGHT
    lifted = nut[:, 2] - start_z >= LIFTED
    return np.where(near_peg, np.where(low, 3, 2), np.where(lifted, 1, 0))


def posterior_by_phase(run: Path) -> None:
    from postbc.envs.registry import key_slices
    from postbc.experiments.coverage import load_run_dataset
    from postbc.io.checkpoint import load_checkpoint
    from postbc.pretrain.posterior import PosteriorEstimate

    dataset = load_run_dataset(run)
    tensors, meta = load_checkpoint(run / "posterior")
    std = PosteriorEstimate.from_tensors(tensors, meta["kind"]).std_per_sample().numpy()
    if len(std) != dataset.num_samples:
        raise SystemExit(f"{run}: posterior has {len(std)} samples, its demos {dataset.num_samples}")
    obs = {key: dataset.obs[:, part] for key, part in key_slices(dataset.obs_keys, dataset.obs_dims)}
    nut = obs["object"][:, NUT_POS]
    start_z = nut[dataset.episode_starts, 2][dataset.episode_of]
    phase = phase_of(nut, start_z)
    top = std >= np.quantile(std, 0.9)
    print(f"{run}: posterior std per demo state ({dataset.num_samples} states, {dataset.num_episodes} demos), "
          f"mean {std.mean():.3f}")
    print("| phase | share of demo states | std mean | std median | share of the top-decile states |")
    print("|---|---|---|---|---|")
    for k, name in enumerate(PHASES):
        m = phase == k
        if m.any():
            print(f"| {name} | {m.mean():.3f} | {std[m].mean():.3f} | {np.median(std[m]):.3f} | {top[m].sum() / top.sum():.3f} |")
    errors = []
    for start, length in zip(dataset.episode_starts, dataset.episode_lengths):
        closing = np.flatnonzero(dataset.actions[start:start + length, -1] > 0)
        if len(closing):
            errors.append(grasp_error({key: part[start + closing[0]] for key, part in obs.items()}))
    errors = np.array(errors)
    print(f"the demos' first close: {len(errors)} of {dataset.num_episodes} demos close the gripper, "
          f"{np.median(errors[:, 0]):.1f} cm from the handle, yaw error {np.median(errors[:, 1]):.0f} degrees (medians)")


def grasp_error(obs: dict[str, np.ndarray]) -> tuple[float, float]:
    """(gripper-to-handle distance in cm, |yaw error| in degrees) as the scripted expert aims its grasp:
    the fingers close across the handle bar, so the hand's yaw matches the nut's modulo 180 degrees."""
    from postbc.experts.robosuite_experts import NUT_HANDLE_X, Scene

    scene = Scene.from_obs(obs, "square")
    handle = scene.obj + scene.obj_rot.apply([NUT_HANDLE_X, 0.0, 0.0])
    return (100 * float(np.linalg.norm(scene.eef - handle)),
            abs(math.degrees(math.remainder(scene.eef_yaw - scene.obj_yaw, math.pi))))


def rollout(policy, env, keys, seed: int, k: int) -> dict:
    """Episode k as `evaluate(seed=seed)` runs it: solved, furthest (index into FURTHEST), and the grasp error
    (`grasp_error`) when the policy first commanded the gripper closed (None if it never did)."""
    from postbc.envs.registry import flatten_obs
    from postbc.envs.vector import episode_seed
    from postbc.evaluation.episodes import POLICY_NOISE_STREAM

    obs, _ = env.reset(seed=episode_seed(seed, k))
    rng = np.random.default_rng(episode_seed(seed, k, POLICY_NOISE_STREAM))
    start_z = float(obs["object"][NUT_POS][2])
    furthest, first_close, solved, truncated = 0, None, False, False
    while not (solved or truncated):
        noise = rng.standard_normal((1, policy.chunk, policy.act_dim)).astype(np.float32)
        chunk = np.asarray(policy.act(flatten_obs({n: v[None] for n, v in obs.items()}, keys), noise=noise))[0]
        for action in chunk:
            if first_close is None and action[-1] > 0:
                first_close = grasp_error(obs)
            obs, _, solved, truncated, _ = env.step(action)
            furthest = max(furthest, int(phase_of(obs["object"][NUT_POS], start_z)[0]))
            if solved or truncated:
                break
    return {"solved": solved, "furthest": len(PHASES) if solved else furthest, "first_close": first_close}


def rollouts(run: Path, episodes: int, seed: int, eval_dir: Path | None) -> None:
    import torch

    from postbc.envs.registry import get_task
    from postbc.policies.pretrained import PretrainedPolicy

    torch.set_num_threads(1)
    policy = PretrainedPolicy.load(run)
    spec = get_task("square")
    keys = tuple(getattr(policy, "obs_keys", None) or spec.obs_keys)
    recorded = None
    if eval_dir is not None and (eval_dir / run.name / "eval.json").exists():
        saved = json.loads((eval_dir / run.name / "eval.json").read_text())
        if saved.get("seed") == seed:
            recorded = saved["episode_success"]
    env = spec.make(seed=0)
    results, mismatched = [], []
    for k in range(episodes):
        results.append(rollout(policy, env, keys, seed, k))
        if recorded is not None and bool(recorded[k]) != results[-1]["solved"]:
            mismatched.append(k)
    env.close()
    check = ("not checked (no eval.json of this seed)" if recorded is None
             else f"success matches eval.json on {episodes - len(mismatched)} of {episodes} episodes")
    print(f"{run.name}: {episodes} episodes of seed {seed}; {check}")
    counts = np.bincount([r["furthest"] for r in results], minlength=len(FURTHEST))
    print("| policy | " + " | ".join(f"furthest: {name}" for name in FURTHEST) + " |")
    print("|---" * (len(FURTHEST) + 1) + "|")
    print(f"| {run.name} | " + " | ".join(str(c) for c in counts) + " |")
    print("| episodes | count | gripper commanded closed | at the first close: cm to the handle (median) | "
          "yaw error, degrees (median) |")
    print("|---|---|---|---|---|")
    for label, keep in (("never lifted the nut", lambda r: r["furthest"] == 0), ("solved", lambda r: r["solved"]),
                        ("all", lambda r: True)):
        group = [r for r in results if keep(r)]
        closes = np.array([r["first_close"] for r in group if r["first_close"] is not None]).reshape(-1, 2)
        dist, yaw = (f"{np.median(closes[:, 0]):.1f}", f"{np.median(closes[:, 1]):.0f}") if len(closes) else ("", "")
        print(f"| {label} | {len(group)} | {len(closes)} | {dist} | {yaw} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posterior", type=Path, help="a PostBC pretraining run: its posterior std by phase")
    ap.add_argument("--checkpoint", type=Path, nargs="*", default=[], help="pretrained policies to roll out")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000, help="as `postbc evaluate --seed` (the claims grids: 1000)")
    ap.add_argument("--eval-dir", type=Path, help="a sweep's eval/ folder: check success against its eval.json")
    args = ap.parse_args()
    if args.posterior:
        posterior_by_phase(args.posterior)
    for run in args.checkpoint:
        rollouts(run, args.episodes, args.seed, args.eval_dir)


if __name__ == "__main__":
    main()
