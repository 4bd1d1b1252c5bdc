"""`postbc finetune`: build the algorithm for `--algo` and run it in a resumable run directory."""

from __future__ import annotations

import torch

from postbc.finetune.config import NOISE_ACTOR_ALGOS, FinetuneConfig, preset_defaults

__all__ = ["FinetuneConfig", "run", "build_algorithm", "preset_defaults"]


def build_algorithm(cfg: FinetuneConfig, base, obs_dim: int, device="cpu"):
    """The online algorithm of `cfg.algo`, its networks on `device` (the base policy is moved by the caller)."""
    if cfg.algo == "dsrl":
        from postbc.finetune.dsrl import DSRL

        return DSRL(cfg.sac, base, obs_dim, cfg.seed, device)
    if cfg.algo == "dsrl_na":
        from postbc.finetune.dsrl_na import DSRLNA

        return DSRLNA(cfg.sac, base, obs_dim, cfg.seed, device)
    if cfg.algo == "dppo":
        from postbc.finetune.dppo import DPPO

        return DPPO(cfg.dppo, base, obs_dim, cfg.seed, num_envs=cfg.num_envs, device=device)
    raise ValueError(cfg.algo)


def run(cfg: FinetuneConfig, *, base=None, spec=None, stop_at: int | None = None) -> dict:
    """`base` / `spec` replace the checkpoint / task lookup (tests); `stop_at` imitates a kill (tests)."""
    from postbc.device import resolve_for_run
    from postbc.envs.conditioning import spec_for_policy
    from postbc.envs.registry import get_task
    from postbc.errors import PostBCError
    from postbc.finetune.base import base_fingerprint, check_policy_task, load_base_policy, refuse_image_policy
    from postbc.io.runs import prepare_run_dir

    cfg.check_options_belong_to_algo()
    device = resolve_for_run(cfg.device)  # refused before anything is written
    spec = spec or get_task(cfg.task)
    if base is None:
        base = load_base_policy(cfg.checkpoint, spec)
        spec = spec_for_policy(spec, base)  # its tasks, conditioning and keys
    else:
        check_policy_task(base, spec, str(cfg.checkpoint))
    refuse_image_policy(base, str(cfg.checkpoint), cfg.algo)
    if spec.horizon < int(base.chunk):
        raise PostBCError(f"task '{spec.name}' has a horizon of {spec.horizon} steps, shorter than one action chunk "
                          f"({base.chunk} steps) of {cfg.checkpoint}; use a policy with a shorter chunk")
    resuming = prepare_run_dir(cfg.out, cfg, command="finetune", extendable=("steps",))
    torch.set_num_threads(cfg.threads)
    compat = {"task": spec.name, "obs_dim": spec.obs_dim, "act_dim": spec.act_dim, "chunk": int(base.chunk),
              "algo": cfg.algo}
    fingerprint = base_fingerprint(base)
    if fingerprint is not None:
        compat["base_weights"] = fingerprint
    if hasattr(base, "to"):
        base.to(device)
    if cfg.algo == "best_of_n":
        from postbc.finetune.best_of_n import run_best_of_n

        last = run_best_of_n(cfg, base, spec, compat, resuming, device)
    else:
        from postbc.finetune.loop import Trainer

        algo = build_algorithm(cfg, base, spec.obs_dim, device)
        trainer = Trainer(algo, spec, cfg.out, steps=cfg.steps, num_envs=cfg.num_envs, chunk=int(base.chunk),
                          seed=cfg.seed, eval_every=cfg.eval_every, eval_episodes=cfg.eval_episodes,
                          checkpoint_every=cfg.checkpoint_interval, compat=compat, backend=cfg.env_backend,
                          quiet=cfg.quiet, pretrained=base)
        last = trainer.run(resuming, stop_at=stop_at)
        if stop_at is not None:
            return last
        if cfg.algo in NOISE_ACTOR_ALGOS:
            from postbc.finetune.critic_returns import write_critic_summary

            write_critic_summary(cfg.out)
    print(finish_summary(cfg))
    return last


def finish_summary(cfg: FinetuneConfig) -> str:
    """What a finished run reached, what it cost, where it is and how to use it (from its metrics.csv)."""
    from postbc.io.runs import read_metrics

    rows = [r for r in read_metrics(cfg.out) if r.get("eval_success") not in (None, "")]
    if not rows:
        return f"finetune run {cfg.out} finished (no evaluation logged)"
    last = rows[-1]
    unit = "env_steps" if "env_steps" in last else "updates"
    lines = [f"finetuned {cfg.checkpoint} on {cfg.task} with {cfg.algo}: {int(float(last[unit]))} {unit.replace('_', ' ')}"
             f" in {float(last.get('wall_time') or 0) / 60:.1f} min",
             f"  success {float(last['eval_success']):.2f} [{float(last['eval_low']):.2f}, {float(last['eval_high']):.2f}]"
             f" over {cfg.eval_episodes} episodes (95% interval)"]
    start = rows[0].get("pretrained_success") or (rows[0]["eval_success"] if len(rows) > 1 else "")
    if start not in (None, ""):
        lines[-1] += f"; the pretrained policy: {float(start):.2f}"
    lines += [f"  policy written to {cfg.out} (evaluate: postbc eval --checkpoint {cfg.out}; in Python: "
              f"postbc.finetune.serve.load_finetuned_policy('{cfg.out}'))",
              f"  extend it: the same command with a larger --steps continues from its last checkpoint"]
    return "\n".join(lines)
