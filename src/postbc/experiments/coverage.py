"""Coverage diagnostics of one (task, demos, seed): where PostBC's action distribution is wide.

- Per-state ensemble std along each demo trajectory, from the postbc run's `posterior.*`
  checkpoint (the mean over chunk coordinates of the posterior's marginal std).
- 2-D density of the first action (its first two dimensions) sampled from BC and from PostBC at
  chosen states: the demo states with the largest and the smallest ensemble std (data scarce
  vs. data dense).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from postbc.experiments.plots import plt, save


def ensemble_std_per_state(postbc_run: Path) -> np.ndarray:
    """(N,) per dataset state, in the order of the run's dataset."""
    from postbc.io.checkpoint import load_checkpoint
    from postbc.pretrain.posterior import PosteriorEstimate

    tensors, meta = load_checkpoint(Path(postbc_run) / "posterior")
    return PosteriorEstimate.from_tensors(tensors, meta["kind"]).std().mean(-1).numpy()


def load_run_dataset(run_dir: Path):
    import json

    from postbc.data import DemoDataset

    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    return DemoDataset.load(cfg["dataset"], obs_keys=cfg.get("obs_keys"), filter_key=cfg.get("filter_key"),
                            max_demos=cfg.get("max_demos"))


def std_along_trajectories(std: np.ndarray, dataset, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for e, (start, length) in enumerate(zip(dataset.episode_starts, dataset.episode_lengths)):
        ax.plot(np.arange(length), std[start:start + length], lw=1, label=dataset.demo_names[e] if e < 8 else None)
    ax.set_xlabel("step in demo")
    ax.set_ylabel("ensemble std (normalized action units:\nactions scaled to [-1, 1]; mean over chunk coords)", fontsize=8)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    return save(fig, path)


def chosen_states(std: np.ndarray, count: int) -> list[tuple[str, int]]:
    """`count` scarce (largest std) and `count` dense (smallest std) demo states."""
    order = np.argsort(std)
    return [("scarce", int(i)) for i in order[::-1][:count]] + [("dense", int(i)) for i in order[:count]]


def action_density(policies: dict[str, object], dataset, states: list[tuple[str, int]], std: np.ndarray,
                   samples: int, seed: int, title: str, path: Path) -> Path:
    """Rows: chosen states; columns: methods; each a 2-D histogram of the first action's dims 0 and 1.

    Policies clip their actions to the demos' range, so mass beyond it piles up on the frame's edge:
    the dashed box is that range, and a bright edge there means "as far as the policy may go".
    """
    from postbc.evaluation.diagnostics import sample_actions

    obs = dataset.obs[[i for _, i in states]]
    drawn = {m: sample_actions(p, obs, samples, seed)[:, :, 0, :2] for m, p in policies.items()}
    demo_actions = dataset.actions[[i for _, i in states]][:, :2]
    lo, hi = np.asarray(dataset.action_normalizer.low[:2]), np.asarray(dataset.action_normalizer.high[:2])
    lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)  # policies clip to the demo range: keep the edges visible
    fig, axes = plt.subplots(len(states), len(policies), figsize=(3.0 * len(policies), 2.6 * len(states)), squeeze=False)
    box_lo, box_hi = np.asarray(dataset.action_normalizer.low[:2]), np.asarray(dataset.action_normalizer.high[:2])
    rank = {label: 0 for label, _ in states}
    for row, (label, i) in enumerate(states):
        rank[label] += 1
        for col, (method, a) in enumerate(drawn.items()):
            ax = axes[row][col]
            *_, image = ax.hist2d(a[row, :, 0], a[row, :, 1], bins=30, range=[[lo[0], hi[0]], [lo[1], hi[1]]],
                                  cmap="viridis")
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02).set_label(f"samples of {samples}", fontsize=6)
            ax.add_patch(plt.Rectangle(box_lo, *(box_hi - box_lo), fill=False, ls="--", lw=0.8, color="white",
                                       label="demo action range (clip)"))
            ax.scatter(demo_actions[row, :1], demo_actions[row, 1:2], marker="x", color="red", s=40, label="demo action")
            which = "most scarce" if label == "scarce" else "most dense"
            ax.set_title(f"{method}: {which} demo state #{rank[label]} (ensemble std {std[i]:.3f})", fontsize=7)
            ax.set_xlabel("action dim 0 (env units)", fontsize=7)
            ax.set_ylabel("action dim 1 (env units)", fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6, loc="upper right")
    fig.suptitle(title + "\n(first action of sampled chunks; the edge of the dashed box is where policies clip)", fontsize=8)
    return save(fig, path)
