"""`postbc demo`: the whole pretraining story on the toy task, in about a minute.

1. A scripted demonstrator writes a few demos (robomimic HDF5). Pocket starts are rare, so the
   few demos that start there show one of the demonstrator's two exits, or none.
2. BC and PostBC are pretrained on the same demos with the same settings.
3. Both are evaluated (success with a 95% interval), and their action spread is measured in
   probe states the demonstrator visits: rare (pockets) versus common (the corridor).
4. A table is printed and `demo.png` shows both policies' action samples in a rare and a
   common state.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from postbc.io.config import require_positive

METHODS = ("bc", "postbc")
TRAIN_THREADS = 1  # these networks are small: a second thread costs more in synchronisation than it gains
EVAL_ENVS = 25  # toy envs are cheap: step them in-process and batch the policy over them


@dataclasses.dataclass
class DemoConfig:
    """Collect toy demos, pretrain BC and PostBC on them, and compare success and action coverage."""

    out: Path = Path("runs/demo")
    """Directory for the dataset, both run directories, the table and the plot."""
    demos: int = 20
    """Demonstrations to train on (few, so that pocket starts are rarely seen)."""
    epochs: int = 2000
    """Policy training epochs (both methods)."""
    hidden: int = 128
    """Width of the denoiser and ensemble MLPs."""
    batch_size: int = 64
    """Batch size of policy and ensemble training."""
    lr: float = 3e-3
    """Peak learning rate of the policy."""
    ensemble_size: int = 32
    """PostBC ensemble members."""
    ensemble_epochs: int = 200
    """PostBC ensemble training epochs."""
    alpha: float = 1.0
    """PostBC posterior noise weight."""
    eval_episodes: int = 200
    """Evaluation episodes per policy."""
    probe_states: int = 64
    """Rare and common probe states (each) at which the action spread is measured."""
    seed: int = 0
    """Seed of the demos, training and evaluation."""
    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        for name in ("demos", "epochs", "hidden", "batch_size", "lr", "ensemble_size", "ensemble_epochs", "eval_episodes", "probe_states"):
            require_positive(name, getattr(self, name))
        require_positive("alpha", self.alpha, allow_zero=True)
        self.out = Path(self.out)


@dataclasses.dataclass
class MethodResult:
    method: str
    success: float
    ci_low: float
    ci_high: float
    spread_rare: float
    spread_common: float
    train_seconds: float


def probe_states(num_per_region: int, seed: int) -> dict[str, np.ndarray]:
    """Flat observations of states the demonstrator visits, labelled rare / common.

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


def run(cfg: DemoConfig) -> list[MethodResult]:
    from postbc.diagnostics import action_spread, sample_actions
    from postbc.evaluation import evaluate
    from postbc.experts.collect import collect
    from postbc.pretrain.command import PretrainConfig
    from postbc.pretrain.command import run as pretrain
    from postbc.utils import is_quiet

    say = (lambda msg: None) if is_quiet(cfg.quiet) else print
    t_start = time.perf_counter()
    dataset = cfg.out / "demos.hdf5"
    if not dataset.exists():
        collect("toy", cfg.demos, dataset, seed=cfg.seed, quiet=cfg.quiet)
    say(f"demos: {dataset}")
    probes = probe_states(cfg.probe_states, cfg.seed + 1)

    results, samples = [], {}
    for method in METHODS:
        t0 = time.perf_counter()
        policy = pretrain(PretrainConfig(
            method=method, dataset=dataset, out=cfg.out / method, seed=cfg.seed, epochs=cfg.epochs,
            hidden=cfg.hidden, batch_size=cfg.batch_size, lr=cfg.lr, threads=TRAIN_THREADS,
            ensemble_size=cfg.ensemble_size, ensemble_epochs=cfg.ensemble_epochs, alpha=cfg.alpha, quiet=True,
        ))
        train_seconds = time.perf_counter() - t0
        ev = evaluate(policy, "toy", episodes=cfg.eval_episodes, seed=cfg.seed + 2, num_envs=EVAL_ENVS, backend="sync",
                      quiet=cfg.quiet)
        spread = {r: float(action_spread(sample_actions(policy, s, 32, cfg.seed + 3)).mean()) for r, s in probes.items()}
        samples[method] = {r: sample_actions(policy, s[:1], 256, cfg.seed + 4)[0, :, 0] for r, s in probes.items()}
        results.append(MethodResult(method, ev.success_rate, ev.ci_low, ev.ci_high, spread["rare"], spread["common"], train_seconds))

    table = format_table(results)
    print(table)
    (cfg.out / "results.md").write_text(table + "\n")
    plot_path = plot_action_samples(samples, {r: s[0] for r, s in probes.items()}, cfg.out / "demo.png")
    print(f"plot: {plot_path}   total wall time {time.perf_counter() - t_start:.0f} s")
    return results


def format_table(results: list[MethodResult]) -> str:
    lines = [
        "| method | success (95% CI) | action spread, rare states | action spread, common states | train time |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.method} | {r.success:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] | {r.spread_rare:.3f} | "
            f"{r.spread_common:.3f} | {r.train_seconds:.0f} s |"
        )
    return "\n".join(lines)


def plot_action_samples(samples: dict, states: dict[str, np.ndarray], path: Path) -> Path:
    """Rows: methods; columns: the arena with the probe states, then the first-action samples per state."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from postbc.envs.toy import WALLS

    regions = list(states)
    fig, axes = plt.subplots(len(samples), 1 + len(regions), figsize=(4 * (1 + len(regions)), 4 * len(samples)))
    colors = {"rare": "tab:red", "common": "tab:blue"}
    for row, (method, by_region) in enumerate(samples.items()):
        arena = axes[row, 0]
        for x0, x1, y0, y1 in WALLS:
            arena.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, color="0.3"))
        for region, state in states.items():
            arena.plot(*state[:2], "o", color=colors[region], label=f"{region} state")
        arena.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", title=f"{method}: probe states")
        arena.legend(loc="upper left", fontsize=8)
        for col, region in enumerate(regions, start=1):
            ax = axes[row, col]
            a = by_region[region]
            ax.scatter(a[:, 0], a[:, 1], s=6, alpha=0.5, color=colors[region])
            ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal", xlabel="action x", ylabel="action y",
                   title=f"{method}: first action at the {region} state")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
