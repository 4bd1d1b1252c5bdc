"""The batched ensemble is exactly K independent MLPs."""

import math

import pytest
import torch
from torch import nn

from postbc.policies.ensemble import EnsembleMLP


def member_as_module(ens: EnsembleMLP, k: int) -> nn.Sequential:
    """Member k of the ensemble copied into an ordinary nn.Sequential."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(ens.weights, ens.biases)):
        lin = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            lin.weight.copy_(w[k].T)
            lin.bias.copy_(b[k, 0])
        layers += [lin] + ([nn.ReLU()] if i < len(ens.weights) - 1 else [])
    return nn.Sequential(*layers)


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_members_equal_separate_mlps(head):
    torch.manual_seed(0)
    ens = EnsembleMLP(4, 5, 3, hidden=16, layers=2, head=head)
    x = torch.randn(4, 7, 5)
    out = ens(x)
    shared = ens(x[0])  # (B, in) is fed to every member
    for k in range(4):
        full = member_as_module(ens, k)(x[k])
        torch.testing.assert_close(out.mean[k], full[:, :3])
        torch.testing.assert_close(shared.mean[k], member_as_module(ens, k)(x[0])[:, :3])
        if head == "gaussian":
            torch.testing.assert_close(out.log_std[k], full[:, 3:].clamp(-5, 2))
    assert (out.log_std is None) == (head == "deterministic")


def test_gaussian_nll_closed_form():
    torch.manual_seed(1)
    ens = EnsembleMLP(3, 2, 2, hidden=8, layers=1, head="gaussian")
    x, y = torch.randn(3, 5, 2), torch.randn(3, 5, 2)
    mean, log_std = ens(x)
    expected = -torch.distributions.Normal(mean, log_std.exp()).log_prob(y).mean(dim=(1, 2))
    torch.testing.assert_close(ens.member_losses(x, y), expected)


def test_one_adam_step_equals_k_independent_adam_steps():
    torch.manual_seed(2)
    K = 3
    ens = EnsembleMLP(K, 4, 2, hidden=8, layers=2)
    singles = [member_as_module(ens, k) for k in range(K)]
    x, y = torch.randn(K, 6, 4), torch.randn(K, 6, 2)
    opt = torch.optim.Adam(ens.parameters(), lr=1e-2, fused=True)
    opt.zero_grad()
    ens.loss(x, y).backward()
    opt.step()
    for k, single in enumerate(singles):
        o = torch.optim.Adam(single.parameters(), lr=1e-2)
        ((single(x[k]) - y[k]) ** 2).mean().backward()
        o.step()
        torch.testing.assert_close(ens(x).mean[k], single(x[k]))


def test_member_gradients_do_not_mix():
    ens = EnsembleMLP(3, 4, 2, hidden=8, layers=2)
    x, y = torch.randn(3, 5, 4), torch.randn(3, 5, 2)
    ens.member_losses(x, y)[1].backward()
    for p in ens.parameters():
        assert p.grad[[0, 2]].abs().max() == 0 and p.grad[1].abs().max() > 0


def test_init_matches_nn_linear_bounds_and_members_differ():
    ens = EnsembleMLP(8, 10, 3, hidden=64, layers=1)
    assert ens.weights[0].abs().max() <= 1 / math.sqrt(10)
    assert ens.weights[1].abs().max() <= 1 / math.sqrt(64)
    assert not torch.allclose(ens.weights[0][0], ens.weights[0][1])


def test_bad_input_shape_is_named():
    ens = EnsembleMLP(2, 3, 1, hidden=4, layers=1)
    with pytest.raises(ValueError, match=r"\(2, B, 3\)"):
        ens(torch.randn(3, 5, 3))


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_compute_grads_equals_autograd(head):
    """The hand-written backward (fit_ensemble's fast path) gives autograd's losses and gradients,
    including the log-std clamp's zero gradient outside [-5, 2], and overwrites stale .grad."""
    torch.manual_seed(3)
    ens = EnsembleMLP(4, 5, 3, hidden=16, layers=3, head=head)
    if head == "gaussian":
        with torch.no_grad():
            ens.biases[-1][..., 3:] += torch.tensor([-9.0, 0.0, 6.0])  # one log-std below, one inside, one above the clamp
    x, y = torch.randn(4, 7, 5), 3 * torch.randn(4, 7, 3)
    losses = ens.member_losses(x, y)
    losses.sum().backward()
    expected = [p.grad.clone() for p in ens.parameters()]
    for p in ens.parameters():
        p.grad.fill_(123.0)  # stale gradients must be overwritten, not accumulated
    for _ in range(2):  # the second call reuses the workspace
        got = ens.compute_grads(x, y)
    torch.testing.assert_close(got, losses.detach())
    for p, g in zip(ens.parameters(), expected):  # float32 rounding only (the clamped NLL terms reach ~1e4)
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-4 * g.abs().max().item())
    if head == "gaussian":
        assert ens.weights[-1].grad[..., 3].abs().max() == 0 and ens.weights[-1].grad[..., 5].abs().max() == 0
    ens.free_workspace()
    with pytest.raises(ValueError, match="compute_grads needs x"):
        ens.compute_grads(x[0], y[0])
