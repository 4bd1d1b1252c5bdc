"""DSRL on a real (tiny) diffusion policy, pretrained here by BC on noisy demonstrations.

The puppet bases of the other tests map noise to actions by hand; this one goes through
everything a real run does: DDIM from the steered noise, the policy's observation normalizer
(the networks see normalized observations), x0 clipping, chunks of 2 on the line task.
"""

import numpy as np
import torch

from postbc.data.normalizer import MinMaxNormalizer
from postbc.envs.testing import fake_task_spec
from postbc.finetune.command import run
from postbc.finetune.config import FinetuneConfig, SACConfig
from postbc.io.runs import read_metrics
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy

HORIZON = 8  # 4 chunks: a goal 1 away needs 4 full-speed steps, so a hesitant policy runs out of time


def noisy_line_bc_policy(seed: int = 0) -> PretrainedPolicy:
    """BC of a greedy line-task operator whose actions carry N(0, 1.5^2) noise (clipped to [-1, 1])."""
    rng = np.random.default_rng(seed)
    n = 4000
    pos, goal = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    obs = np.stack([pos, goal], 1).astype(np.float32) * 0.5 + 0.2  # not in [-1, 1]: the normalizer matters
    actions = np.clip(4 * (goal - pos)[:, None] + 1.5 * rng.standard_normal((n, 2)), -1, 1)[..., None]
    torch.manual_seed(seed)
    model = DiffusionPolicy(DiffusionConfig(obs_dim=2, act_dim=1, chunk=2, hidden=64, layers=2, train_steps=20,
                                            inference_steps=4))
    obs_norm = MinMaxNormalizer.fit(obs)
    x, y = torch.as_tensor(obs_norm.normalize(obs)), torch.as_tensor(actions, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(800):
        idx = torch.randint(0, n, (256,))
        loss = model.loss(x[idx], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the env reports raw (pos, goal); the policy was trained on 0.5 * raw + 0.2: fold that into its normalizer
    raw_norm = MinMaxNormalizer((obs_norm.low - 0.2) / 0.5, (obs_norm.high - 0.2) / 0.5)
    return PretrainedPolicy(model.eval(), raw_norm, MinMaxNormalizer([-1], [1]), ("pos", "goal"), (1, 1),
                            {"env_name": "line", "type": "fake", "env_kwargs": {"task": "line"}})


def test_dsrl_improves_a_pretrained_diffusion_policy(tmp_path):
    sac = SACConfig(hidden=64, layers=2, batch_size=64, utd=4, warmup_steps=400, lr=1e-3, replay_size=10_000)
    cfg = FinetuneConfig(checkpoint="bc", task="line", out=tmp_path / "run", steps=3000, num_envs=4, eval_every=1500,
                         eval_episodes=64, env_backend="sync", quiet=True, sac=sac)
    run(cfg, base=noisy_line_bc_policy(), spec=fake_task_spec("line", horizon=HORIZON))
    rows = read_metrics(cfg.out)
    pretrained = float(rows[0]["pretrained_success"])
    assert 0.3 <= pretrained <= 0.9  # a policy with room to improve
    assert float(rows[-1]["eval_success"]) >= 0.95 and float(rows[-1]["eval_stochastic_success"]) >= 0.95
    # every return lies in [-HORIZON, 0]; the soft bonus is small by the end
    assert -HORIZON - 1 <= float(rows[-1]["q_mean"]) <= 1.0
