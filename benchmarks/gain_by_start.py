"""Where do finetuning's gains and losses fall: at initial states the demos cover, or at scarce ones?

The paper's mechanism: PostBC covers the demonstrator's actions where the demos are scarce, so RL finetuning
improves it there sooner. A sweep's evaluations start episode k of every policy from the same initial state
(postbc.envs.vector: episode k's reset seed depends only on the evaluation seed and k), so each episode's start can
be rebuilt and placed against the demos. For a robosuite task: the object's initial xy position in each evaluation
episode, its distance to the nearest demo's initial object position, and the episodes split into equal thirds from
the nearest to the farthest (the demos' own starts at distance 0). Then, per method and third, mean over seeds:
pretrained success, finetuned success (the final evaluation, served or stochastic actor) and their difference.
A method that finetunes better where the demos are scarce shows its largest gains in the far third. Example:

    python benchmarks/gain_by_start.py runs/claims_can --actor served
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from postbc.envs.registry import get_task
from postbc.envs.robosuite_tasks import OBJECT_POSE
from postbc.envs.vector import episode_seed
from postbc.experiments.episode_pairs import episode_outcomes
from postbc.experiments.results import FINAL_ACTORS, load_results


def demo_starts(sweep: Path, task: str, demos: int) -> np.ndarray:
    """(D, 2): the object's initial xy in each demo of the sweep's collected data for (task, demos)."""
    from postbc.data.robomimic import read_demos

    files = sorted((sweep / "data").glob(f"{task}-d{demos}-s*/demos.hdf5"))
    if not files:
        raise SystemExit(f"no collected demos under {sweep / 'data'} for {task} with {demos} demos")
    position = OBJECT_POSE[task][0]
    return np.stack([d.obs["object"][0][position][:2] for d in read_demos(files[0]).demos])


def eval_starts(task: str, eval_seed: int, episodes: int) -> np.ndarray:
    """(N, 2): the object's initial xy in episodes 0..N-1 of an evaluation seeded `eval_seed`."""
    env = get_task(task).make()
    position = OBJECT_POSE[task][0]
    try:
        return np.stack([env.reset(seed=episode_seed(eval_seed, k))[0]["object"][position][:2] for k in range(episodes)])
    finally:
        env.close()


def thirds(distance: np.ndarray) -> np.ndarray:
    """0 / 1 / 2: the nearest, middle and farthest third of the episodes by distance."""
    ranks = np.argsort(np.argsort(distance, kind="stable"), kind="stable")
    return (3 * ranks) // len(distance)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--actor", choices=sorted(FINAL_ACTORS), default="served")
    args = ap.parse_args()
    results = load_results(args.sweep)
    unsupported = {r.stage.params["task"] for r in results.of_kind("final")} - set(OBJECT_POSE)
    if unsupported:
        raise SystemExit(f"{', '.join(sorted(unsupported))}: not a robosuite task; the object's start is read for "
                         f"{', '.join(OBJECT_POSE)} only")
    pretrained = episode_outcomes(results, "eval")
    final = episode_outcomes(results, "final", FINAL_ACTORS[args.actor])
    starts: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    # (task, demos, algo, method) -> per seed: pretrained and finetuned outcomes, and each episode's third
    table: dict[tuple, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = defaultdict(list)
    for (task, demos, algo, method), by_seed in sorted(final.items()):
        for seed, after in sorted(by_seed.items()):
            before = pretrained.get((task, demos, method), {}).get(seed)
            if before is None or before.eval_seed != after.eval_seed:
                continue
            n = min(len(before.success), len(after.success))
            key = (task, demos, after.eval_seed, n)
            if key not in starts:
                demo_xy, eval_xy = demo_starts(args.sweep, task, demos), eval_starts(task, after.eval_seed, n)
                distance = np.linalg.norm(eval_xy[:, None] - demo_xy[None], axis=-1).min(axis=1)
                starts[key] = (distance, thirds(distance))
            table[(task, demos, algo, method)].append(
                (np.array(before.success[:n]), np.array(after.success[:n]), starts[key][1]))
    for (task, demos, eval_seed, n), (distance, third) in starts.items():
        edges = [f"{distance[third == t].min() * 100:.1f}-{distance[third == t].max() * 100:.1f} cm" for t in range(3)]
        print(f"{task}, {demos} demos, evaluation seed {eval_seed}, {n} episodes; distance of the object's start to "
              f"the nearest demo's, by third: {', '.join(edges)}")
    print(f"\n| method | algo | seeds | near third: pretrained -> finetuned ({args.actor}) | middle | far |")
    print("|---|---|---|---|---|---|")
    for (task, demos, algo, method), seeds in sorted(table.items()):
        cells = []
        for t in range(3):
            before = np.mean([b[third == t].mean() for b, _, third in seeds])
            after = np.mean([a[third == t].mean() for _, a, third in seeds])
            cells.append(f"{before:.2f} -> {after:.2f} ({after - before:+.2f})")
        print(f"| {method} | {algo} | {len(seeds)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
