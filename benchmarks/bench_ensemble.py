"""Ensemble training step: batched-weight EnsembleMLP vs torch.func stack+vmap vs a Python loop over K modules.

One step = forward, backward and Adam update of all K members on their own (K, B) batch, MSE loss.
Every candidate uses one fused Adam (`torch.optim.Adam(fused=True)`) over all its parameters:
- EnsembleMLP compute_grads: the fast path `fit_ensemble` uses (hand-written backward into reused buffers);
- EnsembleMLP autograd: the same module, `loss(x, y).backward()`;
- torch.func: `stack_module_state` of K nn.Sequential, `vmap(grad(functional_call-loss))`, Adam on the stacked params;
- Python loop: K separate nn.Sequential, each with its own forward and `loss_k.backward()`, then one Adam step.
GFLOP/s counts the three matmuls per layer (forward, input grad except layer 1, weight grad) and
is reported as a fraction of this machine's plain float32 (4096 x 4096) matmul rate, measured in
the same run, interleaved with the candidates.

    python benchmarks/bench_ensemble.py [--members 100] [--hidden 512] [--layers 3] [--batch 256] [--profile]
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from postbc.policies.ensemble import EnsembleMLP


def timeit(fns: dict[str, Callable[[], object]], *, rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, measured round-robin so that load changes on a
    shared machine hit every candidate alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def matmul(n: int) -> tuple[Callable[[], object], float]:
    """A plain float32 (n, n) @ (n, n) product and its FLOP count: the machine's reachable peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return (lambda: a @ b), 2.0 * n**3


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int) -> nn.Sequential:
    widths = [in_dim] + [hidden] * layers
    blocks: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        blocks += [nn.Linear(w_in, w_out), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(widths[-1], out_dim))


def step_flops(K: int, B: int, widths: list[int]) -> float:
    fwd = sum(2 * K * B * a * b for a, b in zip(widths[:-1], widths[1:]))
    input_grad_first = 2 * K * B * widths[0] * widths[1]
    return 3 * fwd - input_grad_first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--in-dim", type=int, default=32, help="observation size")
    p.add_argument("--out-dim", type=int, default=28, help="flattened chunk size (e.g. 4 x 7)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--profile", action="store_true", help="also print a torch.profiler table of the fast step")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    K, B, H, L = args.members, args.batch, args.hidden, args.layers
    torch.manual_seed(0)
    x = torch.randn(K, B, args.in_dim)
    y = torch.randn(K, B, args.out_dim)

    ensemble = EnsembleMLP(K, args.in_dim, args.out_dim, H, L)
    opt = torch.optim.Adam(ensemble.parameters(), lr=1e-3, fused=True)

    def fast_step() -> None:
        ensemble.compute_grads(x, y)  # overwrites every .grad: no zero_grad
        opt.step()

    auto_ensemble = copy.deepcopy(ensemble)
    auto_opt = torch.optim.Adam(auto_ensemble.parameters(), lr=1e-3, fused=True)

    def autograd_step() -> None:
        loss = auto_ensemble.loss(x, y)
        auto_opt.zero_grad(set_to_none=True)
        loss.backward()
        auto_opt.step()

    models = [mlp(args.in_dim, args.out_dim, H, L) for _ in range(K)]
    loop_opt = torch.optim.Adam([p for m in models for p in m.parameters()], lr=1e-3, fused=True)

    def loop_step() -> None:
        loop_opt.zero_grad(set_to_none=True)
        for k, m in enumerate(models):
            ((m(x[k]) - y[k]) ** 2).mean().backward()
        loop_opt.step()

    params, buffers = stack_module_state([copy.deepcopy(m) for m in models])
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    vmap_opt = torch.optim.Adam(list(params.values()), lr=1e-3, fused=True)

    def member_loss(p, b, xk, yk):
        return ((functional_call(base, (p, b), (xk,)) - yk) ** 2).mean()

    batched_grad = vmap(grad(member_loss))

    def vmap_step() -> None:
        grads = batched_grad(params, buffers, x, y)
        for k, v in params.items():
            v.grad = grads[k]
        vmap_opt.step()

    peak_fn, peak_flops = matmul(4096)
    times = timeit(
        {
            "matmul": peak_fn,
            "EnsembleMLP compute_grads": fast_step,
            "EnsembleMLP autograd": autograd_step,
            "torch.func stack + vmap": vmap_step,
            f"Python loop over {K} modules": loop_step,
        },
        rounds=args.rounds,
    )
    peak = peak_flops / times.pop("matmul") / 1e9
    flops = step_flops(K, B, [args.in_dim] + [H] * L + [args.out_dim])
    t_batched = times["EnsembleMLP compute_grads"]
    print(f"ensemble training step: K={K}, {L}x{H} MLP, batch {B} per member, in {args.in_dim}, out {args.out_dim}, "
          f"{torch.get_num_threads()} threads, median of {args.rounds} interleaved rounds")
    print(f"plain matmul peak: {peak:.0f} GFLOP/s (4096x4096 float32); step = {flops / 1e9:.1f} GFLOP")
    print(f"{'method':<32} {'ms/step':>9} {'GFLOP/s':>9} {'of peak':>8} {'time vs compute_grads':>22}")
    for name, t in times.items():
        gflops = flops / t / 1e9
        print(f"{name:<32} {1e3 * t:>9.1f} {gflops:>9.1f} {gflops / peak:>8.0%} {t / t_batched:>21.2f}x")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                fast_step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))

if __name__ == "__main__":
    main()
