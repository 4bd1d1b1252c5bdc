"""The paper-sized workloads on every device this machine has, side by side (CPU always; CUDA when present).

Rows (times per operation, fp32; on CUDA also bf16 autocast where the CPU path offers it):
- pretrain step: one AdamW step of the diffusion policy's loss, batch 256, lift sizes (obs 19, chunk 4 x 7),
  3 x 512 (lift) and 3 x 1024 (can / square) denoisers;
- ensemble step: one step of the PostBC bootstrap ensemble, K = 100 members of 3 x 512, batch 256;
- SAC update x20: one DSRL update round at utd 20 (20 gradient steps, batch 256, 2 critics, LayerNorm),
  3 x 256 and the paper's 3 x 2048;
- DDIM-8: one deterministic 8-step sample of the 3 x 512 denoiser, batch 1 (acting) and 256 (DSRL-NA targets).
Run:
    python benchmarks/bench_device.py                  # every device present
    python benchmarks/bench_device.py --devices cpu --quick
"""

from __future__ import annotations

import argparse
import time

import torch

OBS, CHUNK, ACT, BATCH = 19, 4, 7, 256


def timed(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median seconds of `fn()` over `repeats` runs (CUDA synchronized around each)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def pretrain_step(device, hidden: int):
    from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy

    policy = DiffusionPolicy(DiffusionConfig(obs_dim=OBS, act_dim=ACT, chunk=CHUNK, hidden=hidden, layers=3)).to(device)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3, fused=True)
    obs, act = torch.randn(BATCH, OBS, device=device), torch.rand(BATCH, CHUNK, ACT, device=device) * 2 - 1
    gen = torch.Generator().manual_seed(0)

    def step():
        loss = policy.loss(obs, act, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def ensemble_step(device):
    from postbc.policies.ensemble import EnsembleMLP

    ens = EnsembleMLP(100, OBS, CHUNK * ACT, hidden=512, layers=3, head="gaussian").to(device)
    opt = torch.optim.Adam(ens.parameters(), lr=1e-3, fused=True)
    x, y = torch.randn(100, BATCH, OBS, device=device), torch.randn(100, BATCH, CHUNK * ACT, device=device)

    def step():
        ens.compute_grads(x, y)
        opt.step()
    return step


def sac_round(device, hidden: int, precision: str):
    from postbc.finetune.sac import SAC

    sac = SAC(OBS, CHUNK * ACT, hidden=hidden, layers=3, activation="tanh", num_critics=2, action_scale=1.5, lr=3e-4,
              gamma=0.99, tau=0.005, target_entropy=0.0, init_alpha=1.0, precision=precision, layer_norm=True).to(device)
    n = 20_000  # replay on the CPU, each batch moved once, as DSRL does
    data = {"obs": torch.randn(n, OBS), "action": torch.rand(n, CHUNK * ACT) * 3 - 1.5, "reward": -torch.rand(n),
            "next_obs": torch.randn(n, OBS), "done": (torch.rand(n) < 0.01).float()}

    def round_():
        for _ in range(20):
            idx = torch.randint(0, n, (BATCH,))
            sac.update(**{k: v[idx].to(device) for k, v in data.items()})
    return round_


def ddim(device, batch: int):
    from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy

    policy = DiffusionPolicy(DiffusionConfig(obs_dim=OBS, act_dim=ACT, chunk=CHUNK, hidden=512, layers=3)).to(device).eval()
    obs, noise = torch.randn(batch, OBS, device=device), torch.randn(batch, CHUNK, ACT, device=device)

    def sample():
        with torch.inference_mode():
            policy.sample_ddim(obs, noise, 8)
    return sample


def rows(quick: bool):
    """(name, builder(device, precision) -> fn, repeats, precisions)."""
    r = 3 if quick else 10
    return [
        ("pretrain step 3x512", lambda d, p: pretrain_step(d, 512), r, ("fp32",)),
        ("pretrain step 3x1024", lambda d, p: pretrain_step(d, 1024), r, ("fp32",)),
        ("ensemble step K=100 3x512", lambda d, p: ensemble_step(d), r, ("fp32",)),
        ("SAC update x20 3x256", lambda d, p: sac_round(d, 256, p), r, ("fp32", "bf16")),
        ("SAC update x20 3x2048", lambda d, p: sac_round(d, 2048, p), 1 if quick else 3, ("fp32", "bf16")),
        ("DDIM-8 batch 1", lambda d, p: ddim(d, 1), 5 * r, ("fp32",)),
        ("DDIM-8 batch 256", lambda d, p: ddim(d, 256), r, ("fp32",)),
    ]


def main() -> None:
    from postbc.device import available_devices, resolve_for_run

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", nargs="*", default=None, help="default: cpu and every CUDA device present")
    ap.add_argument("--threads", type=int, default=1, help="CPU torch threads")
    ap.add_argument("--quick", action="store_true", help="fewer repeats; skip bf16 on the CPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    devices = [resolve_for_run(d) for d in (args.devices or available_devices())]
    names = [str(d) for d in devices]
    if torch.cuda.is_available():
        names = [f"{d} ({torch.cuda.get_device_name(d)})" if d.type == "cuda" else str(d) for d in devices]
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s); devices: {', '.join(names)}")
    print("| workload | precision | " + " | ".join(f"{d} (ms)" for d in devices) + " |")
    print("|---|---|" + "---|" * len(devices))
    for name, build, repeats, precisions in rows(args.quick):
        for precision in precisions:
            cells = []
            for d in devices:
                if precision == "bf16" and d.type == "cpu" and args.quick:
                    cells.append("skipped")
                    continue
                cells.append(f"{1000 * timed(build(d, precision), d, repeats, warmup=1 if args.quick else 2):.1f}")
            print(f"| {name} | {precision} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
