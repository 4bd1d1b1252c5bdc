import numpy as np

from postbc.envs.toy import is_rare_position
from postbc.experiments.toy_regions import RegionRow, markdown, success_by_region


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


def test_markdown_orders_pretrained_first_and_aggregates_seeds():
    rows = [RegionRow("postbc", "dsrl", "pocket", {0: 0.9, 1: 1.0}),
            RegionRow("bc", "pretrained", "pocket", {0: 0.4, 1: 0.5})]
    lines = markdown(rows).splitlines()
    assert lines[2].startswith("| bc | pretrained | pocket | 2 | 0.450")
    assert lines[3].startswith("| postbc | dsrl | pocket | 2 | 0.950") and lines[3].endswith("| 0.90, 1.00 |")
