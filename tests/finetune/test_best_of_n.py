import numpy as np
import pytest
import torch

from postbc.cli import main
from postbc.envs.vector import episode_seed
from postbc.errors import PostBCError
from postbc.evaluation.episodes import evaluate
from postbc.finetune.best_of_n import load_best_of_n_policy
from postbc.finetune.command import run
from postbc.finetune.config import BestOfNConfig, FinetuneConfig, IQLConfig
from postbc.finetune.iql import expectile_loss
from postbc.finetune.loop import EVAL_SEED_STREAM
from postbc.finetune.rollouts_file import load_rollouts, save_rollouts
from postbc.io.runs import read_metrics

from .conftest import NoisePuppet


def test_expectile_loss_by_hand():
    diff = torch.tensor([2.0, -1.0])
    assert torch.isclose(expectile_loss(diff, 0.9), torch.tensor((0.9 * 4 + 0.1 * 1) / 2))
    assert torch.isclose(expectile_loss(diff, 0.5), torch.tensor(0.5 * (4 + 1) / 2))


def test_value_is_the_expectile_of_q():
    """With one state and Q fixed at the data's rewards, V converges to the tau-expectile of those rewards."""
    torch.manual_seed(0)
    values = torch.tensor([0.0, 0.0, 0.0, 1.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([v], lr=0.05)
    for _ in range(800):
        opt.zero_grad()
        expectile_loss(values - v, 0.9).backward()
        opt.step()
    # tau-expectile e solves 0.9 * (1 - e) * 1 = 0.1 * 3 * e  ->  e = 0.75
    assert abs(v.item() - 0.75) < 0.01


def test_iql_on_a_chain_converges_to_its_known_values():
    """A 12-state chain, reward 1 on the step that leaves the last state (terminal), any action: V(s_i) =
    Q(s_i, a) = gamma^(11 - i). Reward must travel 11 steps back through the target networks."""
    from postbc.finetune.iql import IQL

    torch.manual_seed(0)
    length, gamma = 12, 0.9
    eye = torch.eye(length)
    states = torch.arange(length).repeat(100)
    obs = eye[states]
    next_obs = eye[(states + 1).clamp(max=length - 1)]
    actions = torch.rand(len(states), 2) * 2 - 1  # the action changes nothing: Q must not depend on it
    reward = (states == length - 1).float()
    done = reward.clone()
    iql = IQL(length, 2, hidden=32, layers=2, num_critics=2, lr=1e-3, gamma=gamma, tau=0.05, expectile=0.7)
    for _ in range(1500):  # measured: max error 0.008 after 1500 updates
        idx = torch.randint(0, len(states), (64,))
        iql.update(obs[idx], actions[idx], reward[idx], next_obs[idx], done[idx])
    truth = gamma ** (length - 1 - torch.arange(length, dtype=torch.float32))
    with torch.no_grad():
        v = iql.v(iql.scaled(eye)).squeeze(-1)
        q = iql.q_value(eye.repeat(4, 1), torch.rand(4 * length, 2) * 2 - 1).reshape(4, length)
    assert (v - truth).abs().max() < 0.05, (v, truth)
    assert (q - truth).abs().max() < 0.05, (q, truth)


def _line_rollouts(n=400, seed=0):
    """One-step episodes: reward 1 when the action points toward the goal."""
    rng = np.random.default_rng(seed)
    obs = np.stack([np.zeros(n), rng.uniform(-1, 1, n)], 1).astype(np.float32)
    actions = rng.uniform(-1, 1, (n, 2, 1)).astype(np.float32)
    rewards = (np.sign(actions[:, 0, 0]) == np.sign(obs[:, 1])).astype(np.float32)
    return {"obs": obs, "actions": actions, "rewards": rewards, "next_obs": obs.copy(), "dones": np.ones(n, np.float32),
            "episode": np.arange(n)}


def test_rollouts_round_trip_and_validation(tmp_path):
    data = _line_rollouts(10)
    save_rollouts(tmp_path / "r.h5", data, obs_keys=("pos", "goal"), chunk=2, act_dim=1, task="line")
    back, meta = load_rollouts(tmp_path / "r.h5")
    assert meta["chunk"] == 2 and meta["obs_keys"] == ["pos", "goal"]
    assert all(np.array_equal(back[k], data[k]) for k in data)
    data["rewards"] = data["rewards"][:5]
    save_rollouts(tmp_path / "bad.h5", data, obs_keys=("pos", "goal"), chunk=2, act_dim=1, task="line")
    with pytest.raises(PostBCError, match="'rewards' has shape"):
        load_rollouts(tmp_path / "bad.h5")


def test_best_of_n_fit_cli_then_serve(tmp_path):
    save_rollouts(tmp_path / "r.h5", _line_rollouts(), obs_keys=("pos", "goal"), chunk=2, act_dim=1, task="line")
    argv = ["best-of-n-fit", "--rollouts", str(tmp_path / "r.h5"), "--out", str(tmp_path / "fit"), "--steps", "600",
            "--log-every", "300", "--candidates", "16", "--iql.hidden", "64", "--quiet"]
    assert main(argv) == 0
    rows = read_metrics(tmp_path / "fit")
    assert [r["updates"] for r in rows] == ["0", "300", "600"]
    # no simulator: each row reports the critic on held-out episodes, and IQL's TD error there falls as it trains
    assert float(rows[-1]["heldout_td_error"]) < 0.5 * float(rows[0]["heldout_td_error"])
    assert float(rows[-1]["critic_auc"]) > 0.5 and "eval_success" not in rows[0]
    policy = load_best_of_n_policy(tmp_path / "fit", NoisePuppet())
    goals = np.linspace(-1, 1, 20).astype(np.float32)
    goals = goals[np.abs(goals) > 0.1]
    obs = np.stack([np.zeros_like(goals), goals], 1)
    chunks = policy.act(obs)
    assert chunks.shape == (len(goals), 2, 1)
    assert (np.sign(chunks[:, 0, 0]) == np.sign(goals)).mean() >= 0.9  # random candidates: ~50%


def test_best_of_n_critic_refuses_other_chunk(tmp_path):
    save_rollouts(tmp_path / "r.h5", _line_rollouts(), obs_keys=("pos", "goal"), chunk=2, act_dim=1, task="line")
    assert main(["best-of-n-fit", "--rollouts", str(tmp_path / "r.h5"), "--out", str(tmp_path / "fit"),
                 "--steps", "10", "--log-every", "10", "--quiet"]) == 0
    with pytest.raises(PostBCError, match="chunks of 3.*chunks of\\s+2|uses action chunks of 2, the pretrained policy predicts chunks of 3"):
        load_best_of_n_policy(tmp_path / "fit", NoisePuppet(chunk=3))


def test_finetune_best_of_n_on_the_line_task(tmp_path, line_spec):
    cfg = FinetuneConfig(checkpoint="puppet", task="line", out=tmp_path / "run", algo="best_of_n", steps=600,
                         eval_every=300, eval_episodes=32, num_envs=2, env_backend="sync", quiet=True,
                         best_of_n=BestOfNConfig(rollouts=30, candidates=16, workers=1, iql=IQLConfig(hidden=64)))
    run(cfg, base=NoisePuppet(), spec=line_spec)
    data, meta = load_rollouts(tmp_path / "run" / "rollouts.h5")
    assert len(np.unique(data["episode"])) == 30 and meta["chunk"] == 2
    rows = read_metrics(tmp_path / "run")
    assert [r["updates"] for r in rows] == ["0", "300", "600"]
    assert (tmp_path / "run" / "critic.safetensors").exists()
    # the curve starts from the pretrained policy itself, not from an untrained critic's arbitrary pick
    base = evaluate(NoisePuppet(), line_spec, 32, seed=episode_seed(cfg.seed, 0, EVAL_SEED_STREAM), num_envs=2, backend="sync", quiet=True)
    assert float(rows[0]["eval_success"]) == pytest.approx(base.success_rate)
    # IQL's own signal on held-out rollout chunks: its TD error falls as it trains
    assert float(rows[-1]["heldout_td_error"]) < float(rows[0]["heldout_td_error"])


def test_iql_scales_observations_with_the_policy_normalizer():
    from postbc.data.normalizer import MinMaxNormalizer
    from postbc.finetune.iql import iql_from_config

    norm = MinMaxNormalizer([0.0, 10.0], [2.0, 30.0])
    iql = iql_from_config(IQLConfig(hidden=16), 2, 2, norm)
    raw = torch.tensor([[1.0, 20.0], [2.0, 30.0]])
    action = torch.zeros(2, 2)
    scaled = torch.as_tensor(norm.normalize(raw.numpy()))
    np.testing.assert_allclose(iql.q_value(raw, action).detach(), iql.q(scaled, action).min(0).values.detach())
    assert torch.equal(iql.scaled(raw), scaled)


def test_plateau_counts_evaluations_without_a_one_percent_gain():
    from postbc.finetune.best_of_n import Plateau

    p = Plateau(patience=2)
    assert [p.update(v) for v in (1.0, 0.5, 0.499, 0.498, 0.3, 0.3)] == [False, False, False, True, False, False]
    assert not Plateau(patience=0).update(1.0) and not Plateau(patience=1).update(float("nan"))


def test_best_of_n_stops_iql_once_its_held_out_error_has_converged_and_resumes_stopped(tmp_path, line_spec):
    cfg = FinetuneConfig(checkpoint="puppet", task="line", out=tmp_path / "run", algo="best_of_n", steps=40_000,
                         eval_every=200, eval_episodes=4, num_envs=2, env_backend="sync", quiet=True,
                         best_of_n=BestOfNConfig(rollouts=20, candidates=4, workers=1, patience=2,
                                                 iql=IQLConfig(hidden=32, lr=3e-3)))
    run(cfg, base=NoisePuppet(), spec=line_spec)
    rows = read_metrics(tmp_path / "run")
    stopped = int(rows[-1]["updates"])
    assert stopped < 40_000 and float(rows[-1]["converged"]) == 1.0
    assert all(float(r["converged"]) == 0.0 for r in rows[1:-1])
    assert (tmp_path / "run" / "critic.safetensors").exists()
    run(cfg, base=NoisePuppet(), spec=line_spec)  # the same command again trains no further
    assert int(read_metrics(tmp_path / "run")[-1]["updates"]) == stopped
