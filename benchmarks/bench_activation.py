"""Would tanh computed as 2 sigmoid(2x) - 1 speed up the SAC update? (Measured: not enough to adopt.)

On this project's CPU (torch 2.13, AVX512 kernels) `torch.tanh` is several times slower than
`torch.sigmoid`, and the DSRL networks use tanh (the reference's activation). Times, on one thread,
the op alone (forward + backward on a critic layer's activations, K=2 members x batch 256 x width)
and a whole DSRL SAC update (3 layers, LayerNorm, batch 256, obs 39, w 4x7: assembly's sizes) with
`torch.tanh` against the sigmoid form. The variants alternate round by round and each
reports its fastest round in the thread's own CPU time, so other load on the machine is mostly
filtered out (wall time under load inflated tanh's share several-fold in a profile).
    python benchmarks/bench_activation.py
    python benchmarks/bench_activation.py --widths 128 256 2048 --rounds 10
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from postbc.finetune import networks
from postbc.finetune.sac import SAC


class SigmoidTanh(torch.autograd.Function):
    """tanh(x) as 2 sigmoid(2x) - 1 (absolute error <= 2.4e-7 in fp32), with tanh's own backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(2.0 * x).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)  # grad * (1 - y^2)


class FastTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return SigmoidTanh.apply(x)


networks.ACTIVATIONS["sigmoid_tanh"] = FastTanh  # for this comparison only


def fastest(fns: dict[str, callable], calls: int, rounds: int) -> dict[str, float]:
    """Seconds per call of each fn: the best of `rounds` rounds of `calls` calls, the fns alternating."""
    best = {k: float("inf") for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.thread_time()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.thread_time() - t) / calls)
    return best


def op_fns(width: int) -> dict[str, callable]:
    x = torch.randn(2, 256, width, requires_grad=True)
    g = torch.randn(2, 256, width)

    def run(f):
        return lambda: torch.autograd.grad(f(x), x, g)

    return {"torch.tanh": run(torch.tanh), "2 sigmoid(2x) - 1": run(SigmoidTanh.apply)}


def update_fns(width: int, obs_dim: int = 39, act_dim: int = 28, batch: int = 256) -> dict[str, callable]:
    torch.manual_seed(0)
    b = dict(obs=torch.randn(batch, obs_dim), action=torch.rand(batch, act_dim) * 3 - 1.5, reward=-torch.rand(batch),
             next_obs=torch.randn(batch, obs_dim), done=torch.zeros(batch))
    out = {}
    for label, act in (("torch.tanh", "tanh"), ("2 sigmoid(2x) - 1", "sigmoid_tanh")):
        sac = SAC(obs_dim, act_dim, hidden=width, layers=3, activation=act, num_critics=2, action_scale=1.5, lr=3e-4,
                  gamma=0.99, tau=0.005, target_entropy=0.0, init_alpha=1.0, layer_norm=True)
        out[label] = lambda sac=sac: sac.update(**b)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", type=int, nargs="+", default=[128, 256])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s); "
          f"best of {args.rounds} alternating rounds")
    for width in args.widths:
        ops = fastest(op_fns(width), calls=50, rounds=args.rounds)
        updates = fastest(update_fns(width), calls=max(2, 400 // width), rounds=args.rounds)
        (a, b) = ops
        print(f"width {width:5d}  op fwd+bwd (2, 256, {width}): {a} {ops[a] * 1e6:7.1f} us, {b} {ops[b] * 1e6:7.1f} us"
              f" ({ops[a] / ops[b]:.1f}x)  |  SAC update: {updates[a] * 1e3:6.1f} ms vs {updates[b] * 1e3:6.1f} ms"
              f" ({updates[a] / updates[b]:.2f}x)")


if __name__ == "__main__":
    main()
