import numpy as np

from postbc.envs.toy import is_rare_position
from postbc.experiments.toy_regions import RegionRow, success_by_region, table_rows


class FirstObsRecorder:
    """Stands still (so every episode fails) and records where each episode starts."""

    chunk, act_dim = 4, 2

    def __init__(self):
        self.starts: list[np.ndarray] = []

    def act(self, obs_flat):
        obs_flat = np.asarray(obs_flat)
        fresh = np.abs(obs_flat[:, 2:4]).sum(1) == 0  # zero velocity: the first step of an episode
        self.starts += list(obs_flat[fresh, :2])
        return np.zeros((len(obs_flat), self.chunk, self.act_dim), np.float32)


def test_regions_start_where_they_say(monkeypatch):
    import postbc.experiments.toy_regions as tr

    seen = {}
    policy = FirstObsRecorder()
    real = tr.REGIONS
    for region, p in real.items():
        monkeypatch.setattr(tr, "REGIONS", {region: p})
        policy.starts = []
        assert success_by_region(policy, episodes=20, seed=3, num_envs=5) == {region: 0.0}
        seen[region] = is_rare_position(np.array(policy.starts))
    assert seen["pocket"].all() and len(seen["pocket"]) >= 20
    assert not seen["common"].any() and len(seen["common"]) >= 20


def test_rows_put_pretrained_first_and_aggregate_seeds():
    rows = table_rows([RegionRow("postbc", "dsrl", "pocket", {1: 1.0, 0: 0.9}),
                       RegionRow("bc", "pretrained", "pocket", {0: 0.4, 1: 0.5})])
    assert [(r["method"], r["policy"], r["n"]) for r in rows] == [("bc", "pretrained", 2), ("postbc", "dsrl", 2)]
    assert abs(rows[1]["mean"] - 0.95) < 1e-9 and rows[1]["ci_low"] < 0.95 < rows[1]["ci_high"]
    assert rows[1]["per_seed"] == "0.90 1.00"
