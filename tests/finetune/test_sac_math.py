import math

import numpy as np
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from postbc.finetune.config import SACConfig
from postbc.finetune.dsrl import warmup_noise
from postbc.finetune.networks import Critic, CriticMLPs, TanhGaussianActor, tanh_gaussian_log_prob
from postbc.finetune.sac import SAC, actor_loss, critic_loss, polyak, soft_td_target, temperature_loss


def test_tanh_log_prob_matches_torch_transformed_distribution():
    torch.manual_seed(0)
    mean, log_std = torch.randn(5, 3), torch.randn(5, 3) * 0.3
    u = mean + log_std.exp() * torch.randn(5, 3)
    ref = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()]).log_prob(torch.tanh(u)).sum(-1)
    assert torch.allclose(tanh_gaussian_log_prob(u, mean, log_std), ref, atol=1e-4)


def test_tanh_log_prob_is_finite_far_in_the_tails():
    u = torch.tensor([[30.0, -30.0]])
    assert torch.isfinite(tanh_gaussian_log_prob(u, torch.zeros(1, 2), torch.zeros(1, 2))).all()


def test_actor_scales_actions_but_not_log_probs():
    torch.manual_seed(0)
    a1 = TanhGaussianActor(4, 3, 16, 1, scale=1.0)
    a2 = TanhGaussianActor(4, 3, 16, 1, scale=1.5)
    a2.load_state_dict(a1.state_dict())
    obs = torch.randn(7, 4)
    torch.manual_seed(1)
    x1, lp1 = a1(obs)
    torch.manual_seed(1)
    x2, lp2 = a2(obs)
    assert torch.allclose(x2, 1.5 * x1) and torch.allclose(lp1, lp2)
    assert x2.abs().max() <= 1.5


def test_soft_td_target_by_hand():
    reward = torch.tensor([-1.0, 0.0])
    done = torch.tensor([0.0, 1.0])
    next_q = torch.tensor([[2.0, 5.0], [3.0, 4.0]])  # (K=2, B=2): min is [2, 4]
    next_logp = torch.tensor([0.5, 0.5])
    y = soft_td_target(reward, done, next_q, next_logp, alpha=0.2, gamma=0.9)
    assert torch.allclose(y, torch.tensor([-1.0 + 0.9 * (2.0 - 0.1), 0.0]))
    plain = soft_td_target(reward, done, next_q, next_logp, alpha=0.2, gamma=0.9, backup_entropy=False)
    assert torch.allclose(plain, torch.tensor([-1.0 + 0.9 * 2.0, 0.0]))


def test_critic_and_actor_losses_by_hand():
    q = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    assert math.isclose(critic_loss(q, torch.tensor([1.0, 1.0])).item(), 0.5 * (2.0 + 1.0))
    assert math.isclose(actor_loss(q, torch.tensor([0.0, 1.0]), 0.5).item(), ((0 - 1) + (0.5 - 2)) / 2)


def test_temperature_moves_toward_target_entropy():
    log_alpha = torch.zeros((), requires_grad=True)
    logp = torch.full((8,), 2.0)  # entropy -2, below a target of 0: alpha must grow
    temperature_loss(log_alpha, logp, 0.0).backward()
    assert log_alpha.grad < 0
    log_alpha.grad = None
    temperature_loss(log_alpha, torch.full((8,), -2.0), 0.0).backward()  # entropy 2 above target: shrink
    assert log_alpha.grad > 0


def test_ensemble_equals_separate_members():
    torch.manual_seed(0)
    net = CriticMLPs(3, 5, 2, 8, 2)
    x = torch.randn(4, 5)
    out = net(x)
    for k in range(3):
        h = x
        for i, layer in enumerate(net.layers):
            h = h @ layer.weight[k] + layer.bias[k]
            if i < len(net.layers) - 1:
                h = torch.relu(h)
        assert torch.allclose(out[k], h, atol=1e-6)


def test_detached_critic_passes_gradient_to_actions_only():
    critic = Critic(3, 2, 8, 1)
    a = torch.randn(4, 2, requires_grad=True)
    critic(torch.randn(4, 3), a, detach=True).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())


def test_polyak():
    src, tgt = Critic(2, 1, 4, 1), Critic(2, 1, 4, 1)
    before = [p.clone() for p in tgt.parameters()]
    polyak(tgt, src, 0.25)
    for b, s, t in zip(before, src.parameters(), tgt.parameters()):
        assert torch.allclose(t, 0.75 * b + 0.25 * s)


def test_sac_update_reduces_td_error_on_a_fixed_batch():
    torch.manual_seed(0)
    sac = SAC(3, 2, hidden=32, layers=2, activation="relu", num_critics=2, action_scale=1.5, lr=1e-3,
              gamma=0.0, tau=0.005, target_entropy=0.0, init_alpha=0.1)
    batch = dict(obs=torch.randn(64, 3), action=torch.rand(64, 2) * 3 - 1.5, reward=torch.randn(64),
                 next_obs=torch.randn(64, 3), done=torch.zeros(64))
    first = sac.update(**batch)["critic_loss"]
    for _ in range(200):
        last = sac.update(**batch)["critic_loss"]
    assert last < 0.5 * first


def test_bf16_keeps_outputs_in_fp32_and_close_to_fp32():
    """Under bf16 autocast the hidden layers round, but Q near -100 must not be rounded to 0.5 steps."""
    from postbc.finetune.networks import bf16_autocast

    torch.manual_seed(0)
    critic = Critic(5, 3, 64, 2, members=2, activation="tanh")
    with torch.no_grad():
        critic.net.layers[-1].bias.fill_(-100.0)
    obs, act = torch.randn(32, 5), torch.randn(32, 3)
    ref = critic(obs, act)
    with bf16_autocast("bf16"):
        low = critic(obs, act)
    assert low.dtype == torch.float32
    assert (low - ref).abs().max() < 0.05  # hidden-layer rounding only; bf16 output spacing at 100 is 0.5
    actor = TanhGaussianActor(5, 3, 64, 2, scale=1.5, activation="tanh")
    with bf16_autocast("bf16"):
        mean, log_std = actor.dist_params(obs)
    assert mean.dtype == torch.float32 and log_std.dtype == torch.float32


def test_sac_update_in_bf16_reduces_td_error_like_fp32():
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        sac = SAC(3, 2, hidden=32, layers=2, activation="tanh", num_critics=2, action_scale=1.5, lr=1e-3,
                  gamma=0.0, tau=0.005, target_entropy=0.0, init_alpha=0.1, precision=precision)
        batch = dict(obs=torch.randn(64, 3), action=torch.rand(64, 2) * 3 - 1.5, reward=torch.randn(64),
                     next_obs=torch.randn(64, 3), done=torch.zeros(64))
        first = sac.update(**batch)["critic_loss"]
        for _ in range(200):
            last = sac.update(**batch)
        assert all(v.dtype == torch.float32 for v in last.values())
        assert all(p.dtype == torch.float32 for p in sac.parameters())
        losses[precision] = (first, last["critic_loss"])
    assert losses["bf16"][1] < 0.5 * losses["bf16"][0]
    assert abs(losses["bf16"][1] - losses["fp32"][1]) < 0.2 * losses["fp32"][0]


def test_radial_warmup_noise_reaches_the_centre_that_standard_noise_never_draws():
    """In 28 dimensions N(0, I) lies on a shell of radius about 5: no draw comes near w = 0, the noise the
    base policy's sampling is centred on. Radial warm-up noise shrinks each draw by u ~ U(0, 1) and so
    covers radii from 0 out."""
    rng = np.random.default_rng(0)
    standard = warmup_noise(4000, 28, SACConfig(), rng).norm(dim=1)
    radial = warmup_noise(4000, 28, SACConfig(warmup_noise="radial"), rng)
    assert float(standard.min()) > 2.5  # clipped to [-1.5, 1.5]: a mean norm of about 4.7
    assert float(radial.abs().max()) <= SACConfig().action_magnitude
    norms = radial.norm(dim=1)
    assert float((norms < 0.5).float().mean()) > 0.05  # about 1 in 10 draws within 0.5 of the centre
    fractions = norms / standard.mean()  # u, up to the shell's spread: about uniform on [0, 1]
    assert abs(float(fractions.mean()) - 0.5) < 0.05 and float(fractions.max()) > 0.9
