import json
from pathlib import Path

import pytest

from postbc.errors import PostBCError
from postbc.experiments.config import load_sweep_config, parse_sweep_config
from postbc.experiments.plan import plan_sweep

REPO = Path(__file__).resolve().parents[2]
GRID = {"tasks": ["toy"], "demos": [4], "methods": ["bc", "postbc"]}


def test_example_configs_load():
    for path in sorted((REPO / "configs").glob("*.toml")):
        cfg = load_sweep_config(path)
        assert plan_sweep(cfg, Path("/tmp/x"))


def test_plan_shares_upstream_stages():
    cfg = load_sweep_config(REPO / "configs" / "toy_tiny.toml")
    stages = plan_sweep(cfg, Path("/sweep"))
    kinds = [s.kind for s in stages]
    assert kinds.count("collect") == 1 and kinds.count("pretrain") == 4 and kinds.count("finetune") == 4
    names = {s.name for s in stages}
    assert "finetune/toy-d4-postbc-dsrl-s1" in names
    ft = next(s for s in stages if s.name == "finetune/toy-d4-postbc-dsrl-s1")
    assert ft.deps == ("pretrain/toy-d4-postbc-s1",)
    assert ft.config["checkpoint"] == "/sweep/pretrain/toy-d4-postbc-s1" and ft.config["sac"]["hidden"] == 32
    final = next(s for s in stages if s.name == "final/toy-d4-postbc-dsrl-s1")  # evaluate.final_episodes = 8
    assert final.deps == (ft.name,) and final.config["policy"] == ft.config["out"]
    assert (final.config["episodes"], final.config["seed"]) == (8, cfg.evaluate.seed)  # the pretrained evaluation's seed
    assert final.params == ft.params and kinds.count("final") == 4
    assert final.config["stochastic_actor"]  # a DSRL run's final evaluation also runs the reference's (sampled) actor
    pretrains = [s for s in stages if s.kind == "pretrain"]
    assert {s.config["dataset"] for s in pretrains} == {"/sweep/data/toy-d4-s0/demos.hdf5"}
    # every stage comes after its dependencies
    seen = set()
    for s in stages:
        assert set(s.deps) <= seen
        seen.add(s.name)


def test_task_override_merges_nested_tables():
    cfg = parse_sweep_config({"grid": {**GRID, "algos": ["dsrl"]}, "finetune": {"steps": 10, "sac": {"hidden": 8, "utd": 2}},
                              "task_overrides": {"toy": {"finetune": {"sac": {"hidden": 16}}, "pretrain": {"alpha": 0.5}}}})
    assert cfg.finetune_options("toy", "dsrl") == {"steps": 10, "sac": {"hidden": 16, "utd": 2}}
    assert cfg.pretrain_options("toy") == {"alpha": 0.5}


def test_algo_override_applies_to_its_algorithm_only_and_a_task_override_wins():
    cfg = parse_sweep_config({"grid": {**GRID, "algos": ["dsrl", "best_of_n"]}, "finetune": {"steps": 10, "eval_every": 5},
                              "algo_overrides": {"best_of_n": {"steps": 300, "best_of_n": {"candidates": 4}}},
                              "task_overrides": {"toy": {"finetune": {"eval_every": 7}}}})
    assert cfg.finetune_options("toy", "dsrl") == {"steps": 10, "eval_every": 7}
    assert cfg.finetune_options("toy", "best_of_n") == {"steps": 300, "eval_every": 7, "best_of_n": {"candidates": 4}}
    ft = {s.name: s.config for s in plan_sweep(cfg, Path("/sweep")) if s.kind == "finetune"}
    assert ft["finetune/toy-d4-bc-best_of_n-s0"]["steps"] == 300 and ft["finetune/toy-d4-bc-dsrl-s0"]["steps"] == 10


@pytest.mark.parametrize("data, words", [
    ({"grid": {**GRID, "taks": 1}}, ["taks", "tasks"]),
    ({"grid": {**GRID, "methods": ["bc", "diffusion"]}}, ["grid.methods", "'diffusion'", "'postbc'"]),
    ({"grid": {**GRID, "algos": ["ppo"]}}, ["grid.algos", "'dppo'"]),
    ({"grid": GRID, "pretrain": {"epoch": 3}}, ["pretrain.epoch", "PretrainConfig", "epochs"]),
    ({"grid": GRID, "pretrain": {"method": "bc"}}, ["pretrain.method", "set by the sweep"]),
    ({"grid": GRID, "finetune": {"stepz": 3}}, ["finetune.stepz", "FinetuneConfig", "eval_every"]),
    ({"grid": GRID, "task_overrides": {"lift": {}}}, ["task_overrides key", "'toy'"]),
    ({"grid": {**GRID, "algos": ["dsrl"]}, "algo_overrides": {"dppo": {}}}, ["algo_overrides key", "'dsrl'"]),
    ({"grid": {**GRID, "algos": ["dsrl"]}, "algo_overrides": {"dsrl": {"stepz": 1}}}, ["algo_overrides.dsrl.stepz", "FinetuneConfig"]),
    ({"grid": {**GRID, "seeds": []}}, ["grid.seeds", "empty"]),
    ({"name": "x"}, ["[grid]", "tasks"]),
])
def test_bad_configs_name_the_key(data, words):
    with pytest.raises(PostBCError) as e:
        parse_sweep_config(data, "my.toml")
    for w in ["my.toml", *words]:
        assert w in str(e.value)


def test_json_and_bad_files(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"grid": GRID}))
    assert load_sweep_config(p).grid.methods == ["bc", "postbc"]
    for name, text, word in [("s.yaml", "", "use a .toml or .json"), ("t.toml", "grid = [", "does not parse")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(PostBCError, match=word):
            load_sweep_config(tmp_path / name)
    with pytest.raises(PostBCError, match="does not exist"):
        load_sweep_config(tmp_path / "none.toml")


def test_demo_counts_per_task():
    cfg = load_sweep_config(REPO / "configs" / "paper_robomimic.toml")
    data = [s.name for s in plan_sweep(cfg, Path("/p")) if s.kind == "collect"]
    assert data == ["data/lift-d5-s0", "data/can-d10-s0", "data/square-d30-s0"]
    with pytest.raises(PostBCError, match=r"grid.demos has no demo counts for task\(s\) \['can'\]"):
        parse_sweep_config({"grid": {"tasks": ["lift", "can"], "demos": {"lift": [5]}, "methods": ["bc"]}})


@pytest.mark.parametrize("headline, shared", [("headline_toy", "toy_dsrl_d20"), ("headline_lift", "lift_dsrl"),
                                              ("headline_lift", "baseline_lift"), ("headline_can", "baseline_can")])
def test_headline_configs_reuse_every_stage_of_the_sweep_they_extend(headline, shared):
    """They are run in the same --out directory: a stage whose config differed would be refused, not reused."""
    planned = {s.name: s.config for s in plan_sweep(load_sweep_config(REPO / "configs" / f"{headline}.toml"), Path("/r"))}
    for stage in plan_sweep(load_sweep_config(REPO / "configs" / f"{shared}.toml"), Path("/r")):
        assert planned.get(stage.name) == stage.config, stage.name


def test_the_can_alpha_follow_up_differs_from_the_headline_only_in_postbc_alpha():
    """docs/results/can.md compares the two sweeps as a controlled experiment: same demos, seeds, sizes, budgets."""
    baseline = {s.name: s.config for s in plan_sweep(load_sweep_config(REPO / "configs" / "headline_can.toml"), Path("/r"))}
    follow_up = plan_sweep(load_sweep_config(REPO / "configs" / "can_alpha05.toml"), Path("/r"))
    assert {s.kind for s in follow_up} == {"collect", "pretrain", "eval", "finetune"}
    for stage in follow_up:
        expected = {**baseline[stage.name], "alpha": 0.5} if stage.kind == "pretrain" else baseline[stage.name]
        assert stage.config == expected, stage.name


def test_paper_best_of_n_config_is_the_papers_setting():
    stages = plan_sweep(load_sweep_config(REPO / "configs" / "paper_best_of_n.toml"), Path("/r"))
    assert sorted(s.name for s in stages if s.kind == "collect") == ["data/can-d300-s0", "data/lift-d20-s0"]
    assert {s.config["chunk"] for s in stages if s.kind == "pretrain"} == {1}
    finetunes = [s for s in stages if s.kind == "finetune"]
    assert len(finetunes) == 2 * 3 * 5 and {s.config["algo"] for s in finetunes} == {"best_of_n"}
    assert {s.config["best_of_n"]["rollouts"] for s in finetunes} == {1000}
    assert {s.config["best_of_n"]["iql"]["gamma"] for s in finetunes} == {0.999}


def test_the_square_demo_ablation_differs_from_the_square_claims_grid_only_in_the_demo_count():
    """Fig. 4's page puts the ablation's 10 and 50 demos beside the claims grid's 30: every other setting must match."""
    claims = {s.name: s for s in plan_sweep(load_sweep_config(REPO / "configs" / "claims_square.toml"), Path("/r"))}
    ablation = plan_sweep(load_sweep_config(REPO / "configs" / "square_demo_ablation.toml"), Path("/r"))
    assert sorted({s.params["demos"] for s in ablation}) == [10, 50] and len(ablation) == 2 * len(claims)

    def as_30_demos(value):
        if isinstance(value, dict):
            return {k: as_30_demos(v) for k, v in value.items()}
        return value.replace("-d10-", "-d30-").replace("-d50-", "-d30-") if isinstance(value, str) else value

    for stage in ablation:
        twin = claims[as_30_demos(stage.name)]
        expected = {**twin.config, "episodes": stage.params["demos"]} if stage.kind == "collect" else twin.config
        assert as_30_demos(stage.config) == as_30_demos(expected), stage.name
