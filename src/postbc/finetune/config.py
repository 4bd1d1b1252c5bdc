"""`postbc finetune` options. Defaults are CPU-sized; the paper's values are given per field."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from postbc.io.config import require_choice, require_device_name, require_positive, require_range

ALGOS = ("dsrl", "dsrl_na", "dppo", "best_of_n")
NOISE_ACTOR_ALGOS = ("dsrl", "dsrl_na")  # the algorithms that steer the base policy with a learned noise actor
DSRL_ACTORS = ("deterministic", "stochastic")  # which of that actor's outputs steers: served, or sampled (the reference's)
# the options section each algorithm reads; the others' options would be silently ignored, so they are refused
ALGO_SECTION = {"dsrl": "sac", "dsrl_na": "sac", "dppo": "dppo", "best_of_n": "best_of_n"}


@dataclasses.dataclass
class SACConfig:
    """Options of the noise-space SAC learner (DSRL-SAC and DSRL-NA)."""

    # What a run recorded before these fields existed did (serving such a run rebuilds its actor so).
    LEGACY_DEFAULTS = {"layer_norm": False, "normalize_obs": False, "obs_range": "demos", "episode_end": "horizon",
                       "backup_entropy": True}
    EPISODE_ENDS = ("horizon", "success")
    WARMUP_NOISES = ("standard", "radial")

    hidden: int = 256
    """Width of actor and critic MLPs (paper: 2048)."""
    layers: int = 3
    """Hidden layers of actor and critics (paper: 3)."""
    activation: str = "tanh"
    """relu | tanh | gelu | silu (paper: tanh)."""
    layer_norm: bool = True
    """LayerNorm after every hidden linear layer of actor and critics (reference: True)."""
    normalize_obs: bool = True
    """Actor and critics see observations scaled to about [-1, 1] (reference: True); see obs_range."""
    obs_range: str = "warmup"
    """warmup | demos: the range scaled to [-1, 1]: the warm-up rollouts' min-max (fitted once when learning
    starts) or the pretrained policy's demos' (postbc.finetune.obs_scaling says why warmup is the default)."""
    lr: float = 3e-4
    """Adam learning rate for actor, critics and temperature (paper: 3e-4)."""
    batch_size: int = 256
    """Minibatch size (paper: 256)."""
    utd: int = 4
    """Gradient steps per vector-env step (paper: 20 with 4 envs; 10 for sigma-BC)."""
    gamma: float = 0.99
    """Discount per action chunk (paper: 0.99; 0.999 for Square)."""
    tau: float = 0.005
    """Polyak rate of the target critics (paper: 0.005)."""
    target_entropy: float = 0.0
    """SAC target entropy of the squashed noise action (paper: 0)."""
    init_alpha: float = 1.0
    """Initial temperature."""
    num_critics: int = 2
    """Critic ensemble size (paper: 2)."""
    action_magnitude: float = 1.5
    """m: the actor's noise lies in [-m, m]^(chunk*act_dim) (paper: 1.5)."""
    warmup_steps: int = 1000
    """Env steps acting with warm-up noise (warmup_noise) before learning starts (paper: 24000; 32000 Square)."""
    warmup_noise: str = "standard"
    """standard | radial: the warm-up's noise. standard (reference): w ~ N(0, I) clipped to [-m, m], the base
    policy's own sampling, whose draws lie on a shell of radius about sqrt(dim) and never near w = 0. radial:
    w = u * eps with eps ~ N(0, I) and u ~ U(0, 1) per chunk, so the data also cover small noise and the
    centre (docs/results/dsrl_objective.md, "Small noise"). DSRL-NA also distills its noise critic on this
    distribution."""
    replay_size: int = 200_000
    """Replay capacity in chunk transitions."""
    episode_end: str = "horizon"
    """horizon | success: where a training episode ends. horizon (reference): it runs to the task's horizon,
    paying -1 per unsolved step and 0 per solved one, so the return counts the time spent solved. success: it
    ends when the task is first solved, as evaluation counts success; needs --sac.no-backup-entropy
    (docs/finetuning.md: "Which objective")."""
    horizon_bootstrap: bool = False
    """episode_end horizon only: treat the horizon as a time limit (the TD target bootstraps from the last state)
    rather than as terminal (the reference, as Stable-Baselines3 stores its done). The observation has no clock,
    so with a terminal horizon one state's target depends on how many chunks are left, which the critic cannot
    see; on the line task that leaves 4 of 12 DSRL-SAC seeds below 0.9 (docs/finetuning.md, "The horizon as a
    time limit")."""
    backup_entropy: bool = True
    """Add the entropy bonus -alpha log pi(a'|s') to the TD target (soft Q, the reference). Without it Q is the
    plain return, bounded by the rewards, and the temperature only shapes the actor (rlpd's backup_entropy)."""
    noise_critic_steps: int = 10
    """DSRL-NA only: noise-critic distillation steps per update (paper: 10-20)."""
    precision: str = "fp32"
    """fp32 | bf16: bf16 runs the actor's and critics' hidden layers in bfloat16 (autocast; weights,
    optimizer, output layers and the frozen diffusion policy stay fp32). About 1.5x faster updates
    on CPUs with AMX, 12x slower on CPUs without (docs/finetuning.md); fp32 is the reference."""

    def __post_init__(self):
        require_choice("sac.activation", self.activation, ("relu", "tanh", "gelu", "silu"))
        require_choice("sac.precision", self.precision, ("fp32", "bf16"))
        require_choice("sac.obs_range", self.obs_range, ("warmup", "demos"))
        require_choice("sac.episode_end", self.episode_end, self.EPISODE_ENDS)
        require_choice("sac.warmup_noise", self.warmup_noise, self.WARMUP_NOISES)
        if self.episode_end == "success" and self.backup_entropy:
            raise ValueError("sac.episode_end='success' with the entropy backup pays every chunk that does not solve "
                             "the task one more entropy bonus, so SAC learns to avoid success (docs/finetuning.md); "
                             "add --sac.no-backup-entropy, or keep --sac.episode-end horizon")
        if self.episode_end == "success" and self.horizon_bootstrap:
            raise ValueError("sac.horizon_bootstrap applies to sac.episode_end='horizon': episodes that end at success "
                             "already bootstrap at the horizon; drop --sac.horizon-bootstrap")
        for name in ("hidden", "layers", "lr", "batch_size", "utd", "num_critics", "action_magnitude", "replay_size", "noise_critic_steps", "init_alpha"):
            require_positive(f"sac.{name}", getattr(self, name))
        require_positive("sac.warmup_steps", self.warmup_steps, allow_zero=True)
        require_range("sac.gamma", self.gamma, 0.0, 1.0)
        require_range("sac.tau", self.tau, 0.0, 1.0)


@dataclasses.dataclass
class DPPOConfig:
    """Options of DPPO (PPO through the last denoising steps)."""

    finetune_steps: int = 10
    """k: how many of the last DDPM denoising steps are trained (reference: 10 of 20 on Robomimic)."""
    ddpm_steps: int = 20
    """Denoising steps of the DDPM sampling chain (reference: 20)."""
    min_std: float = 0.1
    """Minimum std of each denoising step's Gaussian (paper: 0.1)."""
    clip_ratio: float = 0.01
    """PPO ratio clip at the last finetuned denoising step (reference: 0.01)."""
    clip_ratio_base: float = 0.001
    """PPO ratio clip at the first finetuned step; it grows exponentially to clip_ratio (reference: 0.001, rate 3)."""
    clip_ratio_rate: float = 3.0
    """Rate of that exponential ramp (reference: 3)."""
    lr: float = 1e-4
    """Adam learning rate of the denoiser (reference Robomimic configs: 1e-4)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the value network (DPPO: 1e-3)."""
    rollout_steps: int = 64
    """Chunk decisions per env between updates (DPPO: 300 per env with 50 envs)."""
    epochs: int = 5
    """PPO epochs per rollout (DPPO: 10)."""
    minibatch: int = 256
    """Minibatch size in denoising-step samples."""
    gamma: float = 0.999
    """Discount per chunk decision (reference: 0.999)."""
    gae_lambda: float = 0.95
    """GAE lambda (DPPO: 0.95)."""
    denoising_gamma: float = 0.99
    """Discount across denoising steps inside one decision (DPPO: 0.99)."""
    hidden: int = 256
    """Value network width (3 hidden layers; DPPO: 3 x 256)."""
    value_clip: float = 0.0
    """Clip of the value update around the rollout's values; 0 = unclipped value loss (DPPO: unclipped)."""
    bc_coef: float = 0.0
    """Weight of the BC term: log-prob of the frozen base policy's denoising steps under the finetuned one (DPPO: off)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip of actor and value updates (DPPO: 1.0)."""
    critic_warmup: int = 2
    """Rollouts at the start that train only the value network (reference: 2 on Robomimic)."""

    def __post_init__(self):
        for name in ("finetune_steps", "ddpm_steps", "min_std", "clip_ratio", "clip_ratio_base", "lr", "critic_lr",
                     "rollout_steps", "epochs", "minibatch", "hidden", "max_grad_norm"):
            require_positive(f"dppo.{name}", getattr(self, name))
        for name in ("value_clip", "bc_coef", "critic_warmup"):
            require_positive(f"dppo.{name}", getattr(self, name), allow_zero=True)
        require_positive("dppo.clip_ratio_rate", self.clip_ratio_rate)
        if self.clip_ratio_base > self.clip_ratio:
            raise ValueError(f"dppo.clip_ratio_base={self.clip_ratio_base} must be <= dppo.clip_ratio={self.clip_ratio}")
        if self.finetune_steps > self.ddpm_steps:
            raise ValueError(f"dppo.finetune_steps={self.finetune_steps} must be <= dppo.ddpm_steps={self.ddpm_steps}")
        for name in ("gamma", "gae_lambda", "denoising_gamma"):
            require_range(f"dppo.{name}", getattr(self, name), 0.0, 1.0)


@dataclasses.dataclass
class IQLConfig:
    """Options of the IQL critic used by Best-of-N."""

    expectile: float = 0.7
    """tau of the expectile value loss (paper: 0.5-0.9)."""
    gamma: float = 0.99
    """Discount per chunk decision (paper: 0.99 / 0.999)."""
    hidden: int = 256
    """Width of Q and V networks (paper: 2x256 or larger MLPs)."""
    layers: int = 2
    """Hidden layers of Q and V (paper: 2)."""
    num_critics: int = 2
    """Q ensemble size; the min is used (paper: 2)."""
    lr: float = 3e-4
    """Adam learning rate."""
    tau: float = 0.005
    """Polyak rate of the target Q."""
    batch_size: int = 256
    """Minibatch size."""

    def __post_init__(self):
        require_range("iql.expectile", self.expectile, 0.0, 1.0)
        require_range("iql.gamma", self.gamma, 0.0, 1.0)
        for name in ("hidden", "layers", "num_critics", "lr", "batch_size"):
            require_positive(f"iql.{name}", getattr(self, name))


@dataclasses.dataclass
class BestOfNConfig:
    """Options of Best-of-N (rollouts -> IQL -> argmax over N sampled chunks)."""

    rollouts: int = 100
    """M: episodes of the pretrained policy to collect (paper: 1000-2000 Robomimic, 100 real robot)."""
    candidates: int = 8
    """N: chunks sampled per decision; the one with the highest min-Q is executed (paper: 4-32)."""
    workers: int = 2
    """Processes collecting rollouts."""
    heldout: float = 0.2
    """Fraction of the successful and of the failed rollout episodes held out to check the critic before it acts."""
    force: bool = False
    """Act with the critic even when the held-out check says it ranks no better than chance."""
    patience: int = 0
    """Stop IQL before --steps once its held-out TD error has not fallen by 1% for this many evaluations in a
    row (its own convergence signal; 0: always train the full --steps). Needs held-out rollouts."""
    iql: IQLConfig = dataclasses.field(default_factory=IQLConfig)

    def __post_init__(self):
        for name in ("rollouts", "candidates", "workers"):
            require_positive(f"best_of_n.{name}", getattr(self, name))
        require_positive("best_of_n.patience", self.patience, allow_zero=True)
        require_range("best_of_n.heldout", self.heldout, 0.0, 0.9)


@dataclasses.dataclass
class FinetuneConfig:
    """Finetune a pretrained policy run directory on a task with DSRL-SAC, DSRL-NA, DPPO or Best-of-N.

    `postbc finetune --preset reference ...` starts from the DSRL reference's settings (`preset_defaults`).
    """

    checkpoint: Path
    """Pretrained policy run directory (holds policy.safetensors / policy.json)."""
    task: str
    """Registered task name, e.g. toy or lift."""
    out: Path
    """Run directory to write (resumed when it holds the same config)."""
    algo: Literal["dsrl", "dsrl_na", "dppo", "best_of_n"] = "dsrl"
    """Finetuning algorithm."""
    steps: int = 20_000
    """Env steps of online finetuning (best_of_n: IQL gradient steps; its rollouts are extra)."""
    seed: int = 0
    """Seed for networks, sampling and env resets."""
    num_envs: int = 4
    """Parallel training envs (paper: 4 for DSRL)."""
    eval_every: int = 2000
    """Evaluate and write a metrics row every this many env steps (best_of_n: gradient steps)."""
    eval_episodes: int = 50
    """Evaluation episodes per evaluation point (paper: 200)."""
    checkpoint_every: int = 0
    """Write the resume checkpoint every this many steps; 0 = at every evaluation."""
    threads: int = 1
    """torch CPU threads for learning (small networks on a shared CPU run fastest on one)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N: where networks, the frozen policy and sampled batches live (auto: CUDA when
    present); envs always run on CPU processes. A run may resume on another device."""
    env_backend: str = "auto"
    """auto | async (one process per env) | sync (in-process) for training and evaluation envs."""
    sac: SACConfig = dataclasses.field(default_factory=SACConfig)
    dppo: DPPOConfig = dataclasses.field(default_factory=DPPOConfig)
    best_of_n: BestOfNConfig = dataclasses.field(default_factory=BestOfNConfig)
    quiet: bool = False
    """No progress bar."""

    def __post_init__(self):
        require_choice("algo", self.algo, ALGOS)
        require_choice("env_backend", self.env_backend, ("auto", "async", "sync"))
        require_device_name("device", self.device)
        for name in ("steps", "num_envs", "eval_every", "eval_episodes", "threads"):
            require_positive(name, getattr(self, name))
        require_positive("checkpoint_every", self.checkpoint_every, allow_zero=True)
        if self.algo in NOISE_ACTOR_ALGOS and self.sac.warmup_steps >= self.steps:
            raise ValueError(f"sac.warmup_steps={self.sac.warmup_steps} is not below steps={self.steps}: the run would "
                             "end before SAC learns anything; raise --steps or lower --sac.warmup-steps")

    def check_options_belong_to_algo(self) -> None:
        """Refuse --sac.* / --dppo.* / --best-of-n.* options that the chosen algorithm does not read."""
        defaults = {"sac": SACConfig(), "dppo": DPPOConfig(), "best_of_n": BestOfNConfig()}
        for section, default in defaults.items():
            if section != ALGO_SECTION[self.algo] and getattr(self, section) != default:
                users = ", ".join(a for a, s in ALGO_SECTION.items() if s == section)
                flag = section.replace("_", "-")
                raise ValueError(f"--{flag}.* options are read by --algo {users}, not by --algo {self.algo} (it reads "
                                 f"--{ALGO_SECTION[self.algo].replace('_', '-')}.*): drop them, or choose that algorithm")

    @property
    def checkpoint_interval(self) -> int:
        return self.checkpoint_every or self.eval_every


PRESETS = ("reference",)


def preset_defaults(name: str, task: str | None = None) -> FinetuneConfig:
    """The defaults `postbc finetune --preset NAME` starts from; every option given beside it still overrides.

    reference: the DSRL reference's Robomimic settings (ajwagen/dsrl cfg/robomimic/dsrl_*.yaml, the
    PostBC paper's utd 20): **DSRL-NA** (the reference's `algorithm` on lift, can and square; pass
    --algo dsrl for DSRL-SAC), 4 envs, 3 x 2048 Tanh + LayerNorm networks, utd 20, 10 noise-critic
    steps per update, batch 256, lr 3e-4, tau 0.005, 2 critics, target entropy 0, magnitude 1.5,
    24k warm-up env steps, gamma 0.99, 200 evaluation episodes; on square gamma 0.999 and 32k
    warm-up. (The reference code uses utd 30 on lift and the paper 10 for sigma-BC: pass --sac.utd.)
    A GPU-sized setting: on this project's 2-core CPU one update takes about 1 s.
    """
    import tyro

    require_choice("preset", name, PRESETS)
    square = task == "square"
    sac = SACConfig(hidden=2048, layers=3, activation="tanh", layer_norm=True, normalize_obs=True, lr=3e-4,
                    batch_size=256, utd=20, gamma=0.999 if square else 0.99, tau=0.005, target_entropy=0.0,
                    init_alpha=1.0, num_critics=2, action_magnitude=1.5, warmup_steps=32_000 if square else 24_000,
                    noise_critic_steps=10)
    return FinetuneConfig(checkpoint=tyro.MISSING, task=tyro.MISSING if task is None else task, out=tyro.MISSING,
                          algo="dsrl_na", steps=500_000, num_envs=4, eval_every=25_000, eval_episodes=200, sac=sac)
