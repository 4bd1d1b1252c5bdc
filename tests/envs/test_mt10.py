"""Meta-World MT10 as one multi-task env: task choice, conditioning key, per-task demos and evaluation."""

import numpy as np
import pytest

from postbc.data.inspect_command import describe
from postbc.data.robomimic import read_demos
from postbc.envs.metaworld_multitask import MT10_TASKS, TASK_KEY
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


def test_collect_writes_n_demos_of_every_task_and_inspect_tables_them(tmp_path):
    from postbc.experts.collect import collect

    result = collect("mt10", 1, tmp_path / "mt10.hdf5", seed=0, quiet=True)
    assert result.demos == 10
    f = read_demos(tmp_path / "mt10.hdf5")
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
