import numpy as np

from postbc.experts.operators import OPERATORS, CorrelatedNoise
from postbc.experts.robosuite_experts import nearest_yaw


def test_styles_stay_in_their_operator_ranges_and_differ_between_episodes():
    rng = np.random.default_rng(0)
    for op in OPERATORS.values():
        styles = [op.sample(rng) for _ in range(50)]
        assert all(s.operator == op.name for s in styles)
        assert all(op.speed[0] <= s.speed <= op.speed[1] for s in styles)
        assert all(op.approach_height[0] <= s.approach_height <= op.approach_height[1] for s in styles)
        limit = op.grasp_offset * 3
        assert all(np.all(np.abs(s.grasp_offset) <= limit + 1e-12) for s in styles)
        assert len({round(s.approach_height, 6) for s in styles}) > 40
    assert OPERATORS["careful"].speed[1] < OPERATORS["quick"].speed[0]


def test_blunders_happen_at_their_rate():
    op = OPERATORS["quick"]
    rng = np.random.default_rng(1)
    rate = np.mean([op.sample(rng).blunder for _ in range(4000)])
    assert abs(rate - op.blunder_prob) < 0.02


def test_correlated_noise_has_the_asked_std_and_correlation():
    noise = CorrelatedNoise(np.random.default_rng(2), 3, std=0.1, corr=0.8)
    x = np.array([noise() for _ in range(20000)])
    assert np.allclose(x.std(axis=0), 0.1, rtol=0.1)
    lag1 = np.mean([np.corrcoef(x[:-1, i], x[1:, i])[0, 1] for i in range(3)])
    assert abs(lag1 - 0.8) < 0.03
    assert not CorrelatedNoise(np.random.default_rng(0), 2, std=0.0, corr=0.5)().any()


def test_nearest_yaw_picks_the_symmetric_copy_closest_to_the_hand():
    assert np.isclose(nearest_yaw(np.pi / 2 + 0.1, 0.0, np.pi / 2), 0.1)
    assert np.isclose(nearest_yaw(-3.0, 0.2, np.pi), -3.0 + np.pi)
    assert np.isclose(nearest_yaw(1.0, 1.0, np.pi), 1.0)
