"""How a lift policy fails: per episode, where the gripper closed and where the cube ended up.

For each episode (the same initial states as `evaluate --seed`), the pretrained sampler runs with
fresh N(0, I) noise and the script prints whether it lifted the cube, the gripper-to-cube distance
when the gripper was first commanded closed, the cube's largest rise, and the gripper-to-cube
distance at the end. With `--headroom FILE` (`benchmarks/noise_headroom.py --out`) it runs the
episodes that the fewest draws solved there, which is where a noise policy has to learn something.

    python benchmarks/lift_failures.py --checkpoint runs/dev/lift_bc --headroom runs/dev/lift_bc_headroom.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

GRIPPER_TO_CUBE = slice(7, 10)  # inside lift's `object` observation (postbc.envs.robosuite_tasks)
CUBE_Z = 2


def run_episode(policy, env, spec, seed: int, rng: np.random.Generator) -> dict[str, float]:
    from postbc.envs.registry import flatten_obs

    obs, _ = env.reset(seed=seed)
    rows, success = [], False
    while len(rows) < spec.horizon and not success:
        flat = flatten_obs({k: v[None] for k, v in obs.items()}, spec.obs_keys)
        chunk = np.asarray(policy.act(flat, noise=rng.standard_normal((1, policy.chunk, policy.act_dim)).astype(np.float32)))[0]
        for action in chunk:
            obs, _, success, truncated, _ = env.step(action)
            rows.append((obs["object"][CUBE_Z], np.linalg.norm(obs["object"][GRIPPER_TO_CUBE]), action[-1]))
            if success or truncated:
                break
    cube_z, dist, grip = np.asarray(rows).T
    closing = np.flatnonzero(grip > 0)
    first_close = int(closing[0]) if len(closing) else -1
    return {"success": success, "length": len(rows), "cube_rise": float(cube_z.max() - cube_z[0]),
            "close_step": first_close, "dist_at_close": float(dist[first_close]) if first_close >= 0 else float("nan"),
            "final_dist": float(dist[-1])}


def main() -> None:
    from postbc.envs.registry import get_task
    from postbc.envs.vector import episode_seed
    from postbc.policies.pretrained import PretrainedPolicy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--headroom", help="noise_headroom.py's JSON: run its hardest episodes (with its seed)")
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--draws", type=int, default=2, help="fresh noise draws per episode")
    ap.add_argument("--seed", type=int, default=12345, help="episode seeds, as evaluate's")
    args = ap.parse_args()

    policy = PretrainedPolicy.load(args.checkpoint)
    spec = get_task("lift")
    episodes, solved_by, draws = list(range(args.episodes)), None, 0
    if args.headroom:
        headroom = json.load(open(args.headroom))
        solved_by, draws = np.asarray(headroom["solved"]).sum(0), len(headroom["solved"])
        args.seed = headroom["seed"]
        episodes = [int(i) for i in np.argsort(solved_by, kind="stable")[: args.episodes]]
    env = spec.make(seed=0)
    rng = np.random.default_rng(0)
    failed = []
    for k in episodes:
        for draw in range(args.draws):
            r = run_episode(policy, env, spec, episode_seed(args.seed, k), rng)
            tag = f" (headroom {solved_by[k]}/{draws})" if solved_by is not None else ""
            print(f"episode {k:3d}{tag} draw {draw}: {'lifted' if r['success'] else 'FAILED'} in {r['length']} steps; "
                  f"first close at step {r['close_step']}, {r['dist_at_close'] * 100:.1f} cm from the cube; cube rose "
                  f"{r['cube_rise'] * 100:.1f} cm; {r['final_dist'] * 100:.1f} cm from it at the end", flush=True)
            if not r["success"]:
                failed.append(r)
    if failed:
        print(f"{len(failed)} failures: gripper first closed {np.mean([r['dist_at_close'] for r in failed]) * 100:.1f} cm "
              f"from the cube on average, and ended {np.median([r['final_dist'] for r in failed]) * 100:.0f} cm from it (median)")


if __name__ == "__main__":
    main()
