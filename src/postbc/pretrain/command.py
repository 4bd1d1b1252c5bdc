"""`postbc pretrain`: fit a diffusion policy to demos with bc, sigma_bc or postbc.

    postbc pretrain --method postbc --dataset demos.hdf5 --out runs/lift_postbc

The run directory gets config.json, metrics.csv (+ tb/), checkpoints/last.* (resume), the final
EMA policy `policy.*`, and for postbc `ensemble.*`, `posterior.*` and ensemble_log/metrics.csv.
Running the same command again resumes a killed run from its last checkpoint (a finished
ensemble is not retrained) or does nothing when the run has finished; a different config or a
changed dataset is refused.

Defaults are sized for a CPU; each field's docstring gives the paper's value (Robomimic).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Literal

from postbc.data.bootstrap import BOOTSTRAP_KINDS
from postbc.io.config import require_choice, require_device_name, require_positive, to_jsonable

METHODS = ("bc", "sigma_bc", "postbc")
COVARIANCE_KINDS = ("full", "diagonal")  # postbc.pretrain.posterior (kept here: no torch import for --help)
ENSEMBLE_HEADS = ("deterministic", "gaussian")  # postbc.policies.ensemble
ENSEMBLE_KINDS = ("independent", "shared")  # EnsembleMLP | SharedTrunkEnsemble
ENSEMBLE_LOG = "ensemble_log"  # the ensemble loop's metrics.csv, beside the policy loop's in the run directory


@dataclasses.dataclass
class PretrainConfig:
    """Pretrain a diffusion policy from demonstrations with BC, sigma-BC or Posterior BC."""

    method: Literal["bc", "sigma_bc", "postbc"]
    """bc | sigma_bc | postbc: no target noise, sigma * N(0, I), or alpha * N(0, Sigma(s)) from the ensemble posterior."""
    dataset: Path
    """Robomimic-style HDF5 demos (e.g. from `postbc collect`)."""
    out: Path
    """Run directory (created; re-running the same command resumes it)."""
    seed: int = 0
    """Seed of everything random (initialization, bootstrap, batches, noise)."""
    obs_keys: tuple[str, ...] | None = None
    """Observation keys to flatten, in order (default: the dataset's own list)."""
    filter_key: str | None = None
    """Use only the demos listed under this filter key of the dataset."""
    max_demos: int | None = None
    """Use only the first N demos (paper, DSRL/DPPO runs: 5 Lift, 10 Can, 30 Square)."""
    chunk: int = 4
    """Action chunk length (paper: 4 for DSRL/DPPO, 1 for Best-of-N)."""
    hidden: int = 256
    """Width of the denoiser MLP (paper: 512 Lift, 1024 Can/Square)."""
    layers: int = 3
    """Hidden layers of the denoiser MLP (paper: 3)."""
    train_steps: int = 100
    """Diffusion steps of the training schedule (paper: 100)."""
    inference_steps: int = 8
    """DDIM steps used when acting (paper: 8)."""
    epochs: int = 1000
    """Policy training epochs (paper: 3000)."""
    batch_size: int = 256
    """Batch size of policy and ensemble training (paper: not stated; 256 here)."""
    lr: float = 1e-3
    """Peak AdamW learning rate of the policy, cosine-decayed to 0 (paper: not stated)."""
    weight_decay: float = 1e-6
    """AdamW weight decay of the policy."""
    ema_decay: float = 0.995
    """EMA decay of the saved policy weights (with warm-up)."""
    sigma: float = 0.1
    """sigma_bc: std of the isotropic target noise in normalized action units (paper: 0.1 Lift/Can, 0.05 Square)."""
    alpha: float = 1.0
    """postbc: posterior noise weight; targets a + alpha * L(s) eps, i.e. alpha scales the std (paper: 0.25-1, Libero 2-4)."""
    ensemble_size: int = 100
    """postbc: ensemble members K (paper: 100)."""
    ensemble_epochs: int = 300
    """postbc: ensemble epochs, N bootstrap draws per member each (paper: 10000 Lift, 6000 Can, 3000 Square)."""
    ensemble_hidden: int | None = 48
    """postbc: width of each ensemble member (paper: the policy's width, e.g. 512 on Lift; pass that for the paper's
    setting). 48 on a CPU: the members are plain regressors on low-dim state; 3x48 keeps the toy's rare/common
    posterior-std contrast (3.00 vs 3.14 at 3x256) at ~1/13 of the ensemble's cost (docs/pretraining.md)."""
    ensemble_layers: int | None = None
    """postbc: hidden layers of each member (default: --layers, as in the paper)."""
    ensemble_kind: str = "independent"
    """postbc: independent (K separate MLPs; paper, Robomimic) | shared (K heads on one shared trunk and image
    encoder; paper, Libero: 5 heads with --bootstrap state_action). Image observations need shared."""
    ensemble_head: str = "gaussian"
    """postbc: deterministic | gaussian member head; the posterior uses the means (paper, Robomimic: gaussian)."""
    ensemble_lr: float = 1e-3
    """postbc: Adam learning rate of the ensemble."""
    bootstrap: str = "trajectory"
    """postbc: trajectory | state_action resampling per member (paper: trajectory on Robomimic, state_action on Libero)."""
    covariance: str = "full"
    """postbc: full | diagonal posterior covariance over the flattened chunk (paper: full; diagonal in one setting)."""
    image_features: int = 64
    """Features of each image's conv encoder (datasets with `<camera>_image` keys; postbc.policies.obs_encoder)."""
    checkpoint_every: int = 25
    """Epochs between resume checkpoints (policy and ensemble)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N: where policy and ensemble train (auto: CUDA when present). A run may resume
    on another device; its random draws come from CPU generators, so they do not depend on the device."""
    threads: int = 1
    """torch CPU threads (0: torch's default, one per core). 1 by default, measured on 2 cores (a small
    PostBC pretrain, docs/pretraining.md): idle, 1 thread 12.9 s vs 10.7 s with torch's default; beside
    two busy processes, 21.8 s vs 48.2 s."""
    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        require_choice("method", self.method, METHODS)
        require_choice("bootstrap", self.bootstrap, BOOTSTRAP_KINDS)
        require_choice("covariance", self.covariance, COVARIANCE_KINDS)
        require_choice("ensemble_head", self.ensemble_head, ENSEMBLE_HEADS)
        require_choice("ensemble_kind", self.ensemble_kind, ENSEMBLE_KINDS)
        require_device_name("device", self.device)
        for name in ("chunk", "hidden", "layers", "train_steps", "inference_steps", "epochs", "batch_size",
                     "lr", "ensemble_size", "ensemble_epochs", "ensemble_lr", "checkpoint_every", "image_features"):
            require_positive(name, getattr(self, name))
        for name in ("weight_decay", "sigma", "alpha", "threads"):
            require_positive(name, getattr(self, name), allow_zero=True)
        for name in ("ensemble_hidden", "ensemble_layers", "max_demos"):
            if getattr(self, name) is not None:
                require_positive(name, getattr(self, name))
        if self.method == "postbc" and self.ensemble_size < 2:
            raise ValueError(f"ensemble_size={self.ensemble_size} must be >= 2 for a posterior covariance")
        if self.inference_steps > self.train_steps:
            raise ValueError(f"inference_steps={self.inference_steps} must be <= train_steps={self.train_steps}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay} must lie in [0, 1)")
        self.dataset, self.out = Path(self.dataset), Path(self.out)
        if self.obs_keys is not None:
            self.obs_keys = tuple(self.obs_keys)


def dataset_identity(dataset: Any) -> dict[str, Any]:
    """What a resumed run must see again: a digest of the arrays plus their keys and sizes."""
    digest = hashlib.sha256()
    for array in (dataset.obs, dataset.actions, dataset.episode_lengths):
        digest.update(array.tobytes())
    return {
        "dataset_sha256": digest.hexdigest(),
        "num_samples": dataset.num_samples,
        "num_episodes": dataset.num_episodes,
        "obs_keys": list(dataset.obs_keys),
        "obs_dim": dataset.obs_dim,
        "act_dim": dataset.act_dim,
    }


def stream_seeds(seed: int):
    """The seeds of a run's three random streams, in order: bootstrap, ensemble, policy."""
    import numpy as np

    return np.random.SeedSequence(seed).generate_state(3)


def load_finished(stem: Path, identity: dict[str, Any]):
    """(tensors, meta) of a finished artifact of this run (policy, posterior), refused if made from other data."""
    from postbc.errors import PostBCError
    from postbc.io.checkpoint import load_checkpoint
    from postbc.io.resume import changed_keys

    tensors, meta = load_checkpoint(stem)
    changed = changed_keys(meta.get("dataset") or {}, identity) if "dataset" in meta else ["dataset"]
    if changed:
        raise PostBCError(
            f"{stem}.json was made from other data than the dataset given now "
            f"(differs in: {', '.join(changed)}); "
            "use a new --out or delete the directory"
        )
    return tensors, meta


def run(cfg: PretrainConfig):
    """Pretrain and write the run directory; returns the loaded `PretrainedPolicy`."""
    import torch

    from postbc.data import DemoDataset
    from postbc.data.task_keys import task_table
    from postbc.io.checkpoint import checkpoint_exists
    from postbc.io.runs import prepare_run_dir
    from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
    from postbc.policies.pretrained import POLICY_STEM, PretrainedPolicy
    from postbc.pretrain.target_noise import IsotropicTargetNoise, NoTargetNoise
    from postbc.pretrain.trainer import PolicyTraining, train_policy
    from postbc.device import resolve_for_run
    from postbc.errors import PostBCError
    from postbc.policies.obs_encoder import image_layout
    from postbc.utils import is_quiet

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_for_run(cfg.device)  # refused before anything is written
    dataset = DemoDataset.load(cfg.dataset, obs_keys=cfg.obs_keys, filter_key=cfg.filter_key, max_demos=cfg.max_demos)
    images = image_layout(dataset.obs_keys, dataset.obs_dims)
    if images and cfg.method == "postbc" and cfg.ensemble_kind != "shared":
        raise PostBCError(f"{cfg.dataset} has image observations; PostBC's ensemble on images must share one encoder: "
                          "pass --ensemble-kind shared (the paper's Libero setting: --ensemble-size 5 --bootstrap "
                          "state_action)")
    out = cfg.out
    prepare_run_dir(out, cfg, command="pretrain")
    say = (lambda msg: None) if is_quiet(cfg.quiet) else print
    identity = dataset_identity(dataset)
    if checkpoint_exists(out / POLICY_STEM):
        load_finished(out / POLICY_STEM, identity)
        say(f"{out} already holds a finished {cfg.method} policy; nothing to do")
        return PretrainedPolicy.load(out)

    seeds = stream_seeds(cfg.seed)
    obs = torch.from_numpy(dataset.normalized_obs()).to(device)
    chunks = torch.from_numpy(dataset.action_chunks(cfg.chunk)).to(device)
    if cfg.method == "bc":
        target_noise = NoTargetNoise()
    elif cfg.method == "sigma_bc":
        target_noise = IsotropicTargetNoise(cfg.sigma)
    else:
        target_noise = posterior_target_noise(cfg, dataset, obs, chunks, identity, seeds)

    torch.manual_seed(int(seeds[2]))
    diffusion = DiffusionConfig(
        obs_dim=dataset.obs_dim, act_dim=dataset.act_dim, chunk=cfg.chunk, hidden=cfg.hidden, layers=cfg.layers,
        train_steps=cfg.train_steps, inference_steps=cfg.inference_steps, images=images,
        image_features=cfg.image_features,
    )
    settings = PolicyTraining(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
        ema_decay=cfg.ema_decay, checkpoint_every=cfg.checkpoint_every,
    )
    ema = train_policy(
        DiffusionPolicy(diffusion).to(device), obs, chunks, target_noise, settings,
        generator=torch.Generator().manual_seed(int(seeds[2])),
        checkpoint=out / "checkpoints" / "last", log_dir=out, identity=identity, quiet=cfg.quiet,
    )
    policy = PretrainedPolicy(
        ema.model.cpu(), dataset.obs_normalizer, dataset.action_normalizer, dataset.obs_keys, dataset.obs_dims,
        dataset.env_args, config=to_jsonable(cfg), tasks=tuple(dict.fromkeys(t for t in dataset.demo_tasks if t)),
        task_table=task_table(dataset),
    )
    policy.save(out / POLICY_STEM, extra={"dataset": identity})
    say(f"wrote {out / POLICY_STEM}.safetensors ({cfg.method}, {cfg.epochs} epochs, {dataset.num_samples} samples)")
    return policy


def posterior_target_noise(cfg: PretrainConfig, dataset: Any, obs, chunks, identity: dict[str, Any], seeds):
    """postbc: train (or reload) the bootstrap ensemble, estimate (or reload) Sigma(s), wrap it as target noise."""
    import numpy as np
    import torch

    from postbc.data import bootstrap_counts
    from postbc.io.checkpoint import checkpoint_exists, save_checkpoint
    from postbc.policies.ensemble import EnsembleMLP
    from postbc.policies.obs_encoder import image_layout
    from postbc.policies.shared_ensemble import SharedTrunkEnsemble
    from postbc.pretrain.posterior import PosteriorEstimate, estimate_posterior, fit_ensemble
    from postbc.pretrain.target_noise import PosteriorTargetNoise

    out = cfg.out
    if checkpoint_exists(out / "posterior"):
        tensors, meta = load_finished(out / "posterior", identity)
        return PosteriorTargetNoise(PosteriorEstimate.from_tensors(tensors, meta["kind"]).to(obs.device), cfg.alpha)

    counts = bootstrap_counts(cfg.bootstrap, dataset.episode_of, cfg.ensemble_size, np.random.default_rng(int(seeds[0])))
    torch.manual_seed(int(seeds[1]))
    size = dict(hidden=cfg.ensemble_hidden or cfg.hidden, layers=cfg.ensemble_layers or cfg.layers, head=cfg.ensemble_head)
    if cfg.ensemble_kind == "shared":
        images = image_layout(dataset.obs_keys, dataset.obs_dims)
        ensemble = SharedTrunkEnsemble(cfg.ensemble_size, dataset.obs_dim, chunks[0].numel(), **size, images=images,
                                       image_features=cfg.image_features).to(obs.device)
    else:
        ensemble = EnsembleMLP(cfg.ensemble_size, dataset.obs_dim, chunks[0].numel(), **size).to(obs.device)
    fit_ensemble(
        ensemble, obs, chunks.flatten(1), torch.from_numpy(counts),
        epochs=cfg.ensemble_epochs, batch_size=cfg.batch_size, lr=cfg.ensemble_lr,
        generator=torch.Generator().manual_seed(int(seeds[1])),
        checkpoint=out / "checkpoints" / "ensemble_last", checkpoint_every=cfg.checkpoint_every,
        log_dir=out / ENSEMBLE_LOG, identity=identity, quiet=cfg.quiet,
    )
    shape = {"num_members": ensemble.num_members, "in_dim": ensemble.in_dim, "out_dim": ensemble.out_dim,
             **size, "kind": cfg.ensemble_kind}
    save_checkpoint(out / "ensemble", {**ensemble.state_dict(), "bootstrap_counts": torch.from_numpy(counts)},
                    {"dataset": identity, "ensemble": shape, "bootstrap": cfg.bootstrap})
    posterior = estimate_posterior(ensemble, obs, cfg.covariance)
    save_checkpoint(out / "posterior", posterior.to_tensors(), {"dataset": identity, "kind": posterior.kind})
    return PosteriorTargetNoise(posterior, cfg.alpha)
