"""Per-episode paired tests: counts of discordant episodes and McNemar's p, on hand-built outcomes."""

import pytest

from postbc.experiments.episode_pairs import Episodes, compare, difference_table, gain_table
from postbc.stats import mcnemar_exact_p


def episodes(flags: str, eval_seed: int = 1000) -> Episodes:
    return Episodes(eval_seed, tuple(c == "1" for c in flags))


def test_compare_counts_only_the_discordant_episodes():
    c = compare(episodes("110010"), episodes("100110"))
    assert (c["episodes"], c["only_a"], c["only_b"]) == (6, 1, 1)  # episode 1 only a, episode 3 only b
    assert (c["a"], c["b"], c["p"]) == (0.5, 0.5, 1.0)


def test_compare_uses_the_episodes_both_ran_and_refuses_other_seeds():
    final, pretrained = episodes("11111111"), episodes("0000")  # a final evaluation runs more episodes, same first ones
    c = compare(final, pretrained)
    assert (c["episodes"], c["a"], c["b"], c["only_a"], c["only_b"]) == (4, 1.0, 0.0, 4, 0)
    assert c["p"] == pytest.approx(2 / 16)
    assert compare(final, episodes("0000", eval_seed=7)) is None  # not the same initial states: nothing to pair


def test_gain_and_difference_tables_pair_each_seed_with_its_own_start():
    pretrained = {("can", 10, "bc"): {0: episodes("0000"), 1: episodes("1111")},
                  ("can", 10, "postbc"): {0: episodes("0011")}}
    finals = {"served": {("can", 10, "dsrl", "bc"): {0: episodes("1110"), 1: episodes("1100")},
                         ("can", 10, "dsrl", "postbc"): {0: episodes("0001"), 2: episodes("1111")}}}
    gains = {(r["method"], r["seed"]): r for r in gain_table(pretrained, finals)}
    assert set(gains) == {("bc", 0), ("bc", 1), ("postbc", 0)}  # postbc seed 2 has no pretrained evaluation
    assert (gains[("bc", 0)]["gained"], gains[("bc", 0)]["lost"]) == (3, 0)
    assert (gains[("bc", 1)]["gained"], gains[("bc", 1)]["lost"], gains[("bc", 1)]["pretrained"]) == (0, 2, 1.0)
    assert (gains[("postbc", 0)]["gained"], gains[("postbc", 0)]["lost"]) == (0, 1)
    assert gains[("bc", 0)]["p"] == mcnemar_exact_p(3, 0)
    [diff] = difference_table(finals)  # only seed 0 has both methods
    assert (diff["comparison"], diff["seed"], diff["a_only"], diff["b_only"]) == ("postbc - bc", 0, 1, 3)  # episode 3 only postbc; 0, 1, 2 only bc
    assert (diff["a_success"], diff["b_success"], diff["actor"]) == (0.25, 0.75, "served")

