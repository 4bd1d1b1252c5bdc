"""`postbc demo`'s coverage diagnostic: how widely BC and PostBC sample actions where data is scarce.

- toy task: probe states labelled by region, rare (the pockets) versus common (the corridor),
  from fresh expert episodes; the plot shows both policies' first-action samples at one of each.
- other tasks: the demo states where the PostBC ensemble's posterior std is largest (scarce)
  and smallest (dense), via `postbc.experiments.coverage`; the plots show that std along every
  demo and the first-action density at those states.

Spread is `postbc.evaluation.diagnostics.action_spread`: the root mean per-dimension variance of the first
action over seeded samples, in raw action units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPREAD_SAMPLES = 32
PLOT_SAMPLES = 256


def probe_states(num_per_region: int, seed: int) -> dict[str, np.ndarray]:
    """Flat observations of toy states the demonstrator visits, labelled rare / common.

    They come from fresh expert episodes (not the training demos) with pocket starts made
    common, so both regions have enough states.
    """
    from postbc.envs.registry import get_task
    from postbc.envs.toy import toy_state_region
    from postbc.experts.collect import rollout
    from postbc.experts.registry import get_expert

    spec = get_task("toy")
    env = spec.make(seed=seed, rare_start_prob=0.5)
    expert = get_expert("toy", "mixed")
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(40):
        demo, _ = rollout(env, expert, spec, int(rng.integers(2**31)), rng)
        states.append(np.concatenate([demo.obs[k] for k in spec.obs_keys], axis=-1))
    env.close()
    states = np.concatenate(states).astype(np.float32)
    regions = toy_state_region(states)
    picked = {}
    for region in ("rare", "common"):
        pool = states[regions == region]
        picked[region] = pool[rng.choice(len(pool), size=min(num_per_region, len(pool)), replace=False)]
    return picked


def toy_coverage(policies: dict, num_probes: int, seed: int, out: Path) -> tuple[dict[str, dict[str, float]], list[Path]]:
    """{method: {"rare": spread, "common": spread}} and the action-sample plot."""
    from postbc.demo.report import plot_action_samples
    from postbc.evaluation.diagnostics import action_spread, sample_actions

    probes = probe_states(num_probes, seed)
    spread, samples = {}, {}
    for method, policy in policies.items():
        spread[method] = {r: float(action_spread(sample_actions(policy, s, SPREAD_SAMPLES, seed + 1)).mean())
                          for r, s in probes.items()}
        samples[method] = {r: sample_actions(policy, s[:1], PLOT_SAMPLES, seed + 2)[0, :, 0] for r, s in probes.items()}
    plot = plot_action_samples(samples, {r: s[0] for r, s in probes.items()}, out / "action_samples.png")
    return spread, [plot]


def posterior_coverage(policies: dict, postbc_run: Path, num_states: int, seed: int,
                       out: Path) -> tuple[dict[str, dict[str, float]], list[Path]]:
    """{method: {"scarce": spread, "dense": spread}} at the demo states of largest / smallest ensemble std."""
    from postbc.evaluation.diagnostics import action_spread, sample_actions
    from postbc.experiments.coverage import (action_density, chosen_states, ensemble_std_per_state, load_run_dataset,
                                             std_along_trajectories)

    std = ensemble_std_per_state(postbc_run)
    dataset = load_run_dataset(postbc_run)
    states = chosen_states(std, num_states)
    spread = {}
    for method, policy in policies.items():
        per_state = action_spread(sample_actions(policy, dataset.obs[[i for _, i in states]], SPREAD_SAMPLES, seed + 1))
        labels = np.array([label for label, _ in states])
        spread[method] = {label: float(per_state[labels == label].mean()) for label in ("scarce", "dense")}
    task = (dataset.env_args.get("env_kwargs") or {}).get("task", "")
    plots = [
        std_along_trajectories(std, dataset, f"{task}: PostBC ensemble std along each demo", out / "posterior_std.png"),
        action_density(policies, dataset, states[:1] + states[num_states:num_states + 1], std, PLOT_SAMPLES, seed + 2,
                       f"{task}: first action (dims 0, 1) at the scarcest and the densest demo state",
                       out / "action_density.png"),
    ]
    return spread, plots
