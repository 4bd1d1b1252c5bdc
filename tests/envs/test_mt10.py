"""Meta-World MT10 as one multi-task env: task choice, conditioning key, per-task demos and evaluation."""

import numpy as np
import pytest

from postbc.data.inspect_command import describe
from postbc.data.robomimic import read_demos
from postbc.envs.metaworld_multitask import MT10_TASKS, TASK_KEY
from postbc.envs.metaworld_tasks import OBS_KEYS
from postbc.envs.registry import get_task, make_env
from postbc.errors import PostBCError

pytestmark = pytest.mark.sim
metaworld = pytest.importorskip("metaworld")


def test_mt10_names_metaworlds_own_mt10_tasks_in_its_order():
    from metaworld.env_dict import MT10_V3  # what metaworld.MT10 builds its train classes from

    assert [f"{t}-v3" for t in MT10_TASKS] == list(MT10_V3)
    spec = get_task("mt10")
    assert spec.tasks == MT10_TASKS and spec.obs_keys[-1] == TASK_KEY and spec.obs_dim == 39 + 10


def test_each_episode_is_one_task_and_its_one_hot_conditions_every_step():
    env = make_env("mt10", horizon=5)
    obs, info = env.reset(seed=0, options={"task": "drawer-open"})
    assert info["task"] == "drawer-open" and obs[TASK_KEY].tolist() == [float(t == "drawer-open") for t in MT10_TASKS]
    obs, _, _, _, info = env.step(np.zeros(4, np.float32))
    assert info["task"] == "drawer-open" and obs[TASK_KEY][MT10_TASKS.index("drawer-open")] == 1.0
    drawn = {env.reset(seed=s)[1]["task"] for s in range(12)}
    assert len(drawn) >= 4 and drawn <= set(MT10_TASKS)  # the seed draws the task
    assert env.reset(seed=7)[1]["task"] == env.reset(seed=7)[1]["task"]
    with pytest.raises(PostBCError, match="'drawer-opn' is not one of this env's tasks: reach, push"):
        env.reset(options={"task": "drawer-opn"})
    env.close()


@pytest.fixture(scope="module")
def mt10_demos(tmp_path_factory):
    from postbc.experts.collect import collect

    path = tmp_path_factory.mktemp("mt10") / "mt10.hdf5"
    assert collect("mt10", 1, path, seed=0, quiet=True).demos == 10
    return path


def test_collect_writes_n_demos_of_every_task_and_inspect_tables_them(mt10_demos):
    f = read_demos(mt10_demos)
    assert [d.attrs["task"] for d in f.demos] == list(MT10_TASKS)
    for d in f.demos:  # the conditioning key says the demo's task on every step
        assert (d.obs[TASK_KEY].argmax(1) == MT10_TASKS.index(d.attrs["task"])).all()
    assert all(f.filter_keys[f"task_{t}"] == 1 for t in MT10_TASKS)
    text = describe(f)
    assert "task                      demos  samples  mean length" in text and "  peg-insert-side             1" in text


def test_evaluation_reports_success_per_task_with_intervals():
    from postbc.evaluation.episodes import evaluate

    class Still:
        chunk, act_dim = 2, 4

        def act(self, obs):
            return np.zeros((len(obs), 2, 4), np.float32)

    r = evaluate(Still(), "mt10", episodes=6, seed=0, num_envs=2, backend="sync", env_kwargs={"horizon": 4}, quiet=True)
    per_task = r.per_task()
    assert sum(t["episodes"] for t in per_task.values()) == 6 and set(per_task) <= set(MT10_TASKS)
    assert all(t["success_rate"] == 0.0 and t["ci_high"] > 0 for t in per_task.values())
    assert set(r.to_dict()["per_task"]) == set(per_task)
    assert all(f"  {name}: success 0.0%" in r.summary() for name in per_task)


@pytest.fixture(scope="module")
def embedded_mt10(mt10_demos, tmp_path_factory):
    """MT10 demos (1 per task) with a 6-d per-task embedding added as `lang_emb`."""
    import json
    import shutil

    from postbc.cli import main

    path = tmp_path_factory.mktemp("mt10_emb") / "mt10.hdf5"
    shutil.copy(mt10_demos, path)
    rng = np.random.default_rng(0)
    vectors = {t: rng.normal(size=6).round(3).tolist() for t in MT10_TASKS}
    (path.parent / "emb.json").write_text(json.dumps(vectors))
    assert main(["task-key", "--dataset", str(path), "--key", "lang_emb", "--vectors", str(path.parent / "emb.json")]) == 0
    return path, vectors


def test_demos_record_their_instruction_and_a_task_key_is_added_to_every_demo(embedded_mt10):
    path, vectors = embedded_mt10
    f = read_demos(path)
    assert f.demos[2].attrs["instruction"] == "pick up the puck and place it at the goal"
    for d in f.demos:
        np.testing.assert_allclose(d.obs["lang_emb"], np.tile(vectors[d.attrs["task"]], (d.num_samples, 1)), rtol=1e-6)


def test_a_task_key_is_refused_for_a_task_without_a_vector_and_nothing_is_written(embedded_mt10, tmp_path):
    import shutil

    from postbc.data.task_keys import add_task_key

    path = tmp_path / "copy.hdf5"
    shutil.copy(embedded_mt10[0], path)
    with pytest.raises(PostBCError, match="is of task 'reach', which has no vector for 'other'"):
        add_task_key(path, "other", {"push": [1.0]})
    with pytest.raises(PostBCError, match="demo 'demo_0' has no observation key 'obs/other'"):
        read_demos(path, obs_keys=["other"])  # nothing was written, not even to the demos checked first


def test_a_policy_on_some_tasks_is_evaluated_on_those_with_its_embedding(embedded_mt10, tmp_path):
    from postbc.data import DemoDataset
    from postbc.data.task_keys import task_table
    from postbc.envs.conditioning import spec_for_policy
    from postbc.pretrain.command import PretrainConfig, run

    path, vectors = embedded_mt10
    keys = OBS_KEYS + ("lang_emb",)  # the embedding conditions, not the one-hot
    data = DemoDataset.load(path, obs_keys=keys, max_demos=3)
    assert set(task_table(data)) == {"lang_emb"} and set(task_table(data)["lang_emb"]) == {"reach", "push", "pick-place"}
    policy = run(PretrainConfig(method="bc", dataset=path, out=tmp_path / "bc", obs_keys=keys, max_demos=3, epochs=2,
                                hidden=32, layers=2, train_steps=10, inference_steps=2, quiet=True))
    assert policy.tasks == ("reach", "push", "pick-place")

    spec = spec_for_policy(get_task("mt10"), policy)
    assert spec.obs_keys == keys and spec.tasks == policy.tasks
    env = spec.make(horizon=3)
    drawn = set()
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        drawn.add(info["task"])
        np.testing.assert_allclose(obs["lang_emb"], vectors[info["task"]], rtol=1e-6)
    assert drawn == set(policy.tasks)
    with pytest.raises(PostBCError, match="'door-open' has no lang_emb vector: the policy was not trained on it"):
        env.reset(options={"task": "door-open"})
    env.close()
    with pytest.raises(PostBCError, match="multi-task .*single task"):
        spec_for_policy(get_task("mw-reach"), policy)
