"""Finetuning curves across seeds (aligned by evaluation index, not by exact env step) and steps to a threshold."""

import json
from pathlib import Path

import numpy as np
from postbc.experiments.plan import Stage
from postbc.experiments.results import (Run, SweepResults, curves, final_paired_rows, final_rows, paired_rows,
                                         run_cpu, run_wall, signal_curves, threshold_rows)


def finetune_run(seed: int, steps: list[int], success: list[float], kind: str = "finetune") -> Run:
    params = {"task": "toy", "demos": 5, "algo": "dsrl", "method": "postbc", "seed": seed}
    stage = Stage(f"{kind}/s{seed}", kind, Path(f"/nowhere/s{seed}"), "m", "C", {}, params)
    rows = [{"env_steps": str(x), "eval_success": str(y)} for x, y in zip(steps, success)]
    rows.insert(1, {"env_steps": "1500", "eval_success": ""})  # a training-only row: no eval point
    return Run(stage, "done", None, rows)


def test_seeds_whose_steps_differ_by_a_vector_env_overshoot_are_averaged_point_by_point():
    results = SweepResults(Path("/nowhere"), config=None, runs=[
        finetune_run(0, [0, 2007, 4012], [0.1, 0.3, 0.5]),
        finetune_run(1, [0, 2011, 4005, 6003], [0.3, 0.5, 0.7, 0.9]),  # one evaluation further
    ])
    (curve,) = curves(results).values()
    assert curve["n"] == 2
    np.testing.assert_allclose(curve["x"], [0, 2009, 4008.5])
    np.testing.assert_allclose(curve["mean"], [0.2, 0.4, 0.6])
    assert np.all(curve["low"] <= curve["mean"]) and np.all(curve["mean"] <= curve["high"])


def test_curves_ignore_non_finetune_runs():
    run = finetune_run(0, [0, 2000], [0.1, 0.2], kind="eval")
    assert curves(SweepResults(Path("/nowhere"), config=None, runs=[run])) == {}


def test_steps_to_threshold_counts_the_first_evaluation_at_or_above_it_per_seed():
    results = SweepResults(Path("/nowhere"), config=None, runs=[
        finetune_run(0, [0, 2007, 4012], [0.1, 0.6, 0.4]),  # first reaches 0.5 at 2007, then drops: still 2007
        finetune_run(1, [0, 2011, 4005], [0.5, 0.5, 0.9]),  # the pretrained policy already reaches 0.5
        finetune_run(2, [0, 2003, 4001], [0.1, 0.2, 0.3]),  # never
    ])
    half, high = threshold_rows(results, (0.5, 0.85))
    assert (half["reached"], half["per_seed"], half["median"]) == ("2/3", "s0:2007 s1:0 s2:never", "2007")
    assert (high["reached"], high["per_seed"]) == ("1/3", "s0:never s1:4005 s2:never")
    assert high["median"] == "not reached by most seeds" and high["unit"] == "env_steps"


def test_a_curve_starts_from_the_pretrained_policy_where_step_0_evaluated_it():
    """DSRL's step-0 row holds its untrained deterministic actor (eval_success) and the pretrained sampler."""
    run = finetune_run(0, [0, 2000], [0.96, 0.7])
    run.metrics[0]["pretrained_success"] = "0.4"
    (curve,) = curves(SweepResults(Path("/nowhere"), config=None, runs=[run])).values()
    np.testing.assert_allclose(curve["mean"], [0.4, 0.7])


def test_a_dsrl_runs_stochastic_actor_gets_a_curve_of_its_own_from_the_same_start():
    run = finetune_run(0, [0, 2000, 4000], [0.96, 0.7, 0.8])
    run.metrics[0]["pretrained_success"] = "0.4"
    for row, stochastic in zip([run.metrics[0], *run.metrics[2:]], ["0.9", "0.5", "0.6"]):
        row["eval_stochastic_success"] = stochastic
    by_algo = {key[2]: c for key, c in curves(SweepResults(Path("/nowhere"), config=None, runs=[run])).items()}
    assert set(by_algo) == {"dsrl", "dsrl (stochastic actor)"}
    np.testing.assert_allclose(by_algo["dsrl"]["mean"], [0.4, 0.7, 0.8])
    np.testing.assert_allclose(by_algo["dsrl (stochastic actor)"]["mean"], [0.4, 0.5, 0.6])


def test_paired_differences_use_only_the_seeds_both_methods_finished():
    def run(method, seed, success):
        r = finetune_run(seed, [0, 2000, 4000], success)
        r.stage.params["method"] = method
        return r

    results = SweepResults(Path("/nowhere"), config=None, runs=[
        run("postbc", 0, [0.2, 0.5, 0.9]), run("bc", 0, [0.3, 0.4, 0.5]),
        run("postbc", 1, [0.4, 0.6, 0.8]), run("bc", 1, [0.4, 0.5, 0.6]),
        run("postbc", 2, [0.1, 0.1, 0.1]),  # no bc seed 2: left out of the pairs
    ])
    rows = paired_rows(results, points=3)
    assert [(r["comparison"], r["budget"], r["n"]) for r in rows] == [("postbc - bc", b, 2) for b in (0, 2000, 4000)]
    first, _, last = rows
    np.testing.assert_allclose([first["diff"], last["diff"]], [-0.05, 0.3])
    np.testing.assert_allclose(last["gain_diff"], 0.35)  # postbc gained 0.7 / 0.4, bc 0.2 / 0.2
    assert last["diff_low"] < 0.3 < last["diff_high"] and last["seeds"] == "s0:+0.40 s1:+0.20"


def test_final_evaluations_are_paired_by_seed_and_gain_over_the_same_seeds_pretrained_evaluation(tmp_path):
    def stage_run(kind, method, seed, success, stochastic=None):
        params = {"task": "toy", "demos": 5, "method": method, "seed": seed, **({"algo": "dsrl"} if kind == "final" else {})}
        stage = Stage(f"{kind}/{method}-s{seed}", kind, tmp_path / kind / f"{method}-s{seed}", "m", "C", {}, params)
        stage.dir.mkdir(parents=True)
        (stage.dir / "eval.json").write_text(json.dumps({"success_rate": success}))
        if stochastic is not None:
            (stage.dir / "eval_stochastic.json").write_text(json.dumps({"success_rate": stochastic}))
        return Run(stage, "done", None, [])

    results = SweepResults(tmp_path, config=None, runs=[
        stage_run("eval", "postbc", 0, 0.3), stage_run("eval", "bc", 0, 0.2),
        stage_run("eval", "postbc", 1, 0.4), stage_run("eval", "bc", 1, 0.4),
        stage_run("final", "postbc", 0, 0.9, stochastic=0.95), stage_run("final", "bc", 0, 0.6, stochastic=0.5),
        stage_run("final", "postbc", 1, 0.8), stage_run("final", "bc", 1, 0.7, stochastic=0.6),
        stage_run("final", "postbc", 2, 0.1),  # no pretrained evaluation and no bc seed 2: out of the pairs and gains
    ])
    rows = {(r["method"], r["actor"]): r for r in final_rows(results)}
    assert (rows["postbc", "served"]["n"], rows["postbc", "served"]["per_seed"]) == (3, "s0:0.900 s1:0.800 s2:0.100")
    np.testing.assert_allclose([rows["postbc", "served"]["mean"], rows["postbc", "served"]["gain"],
                                rows["bc", "served"]["gain"]], [0.6, 0.5, 0.35])
    # The stochastic actor's evaluations, where a final stage wrote them, make rows and pairs of their own.
    assert rows["postbc", "stochastic"]["per_seed"] == "s0:0.950" and rows["bc", "stochastic"]["n"] == 2
    pair, stochastic_pair = final_paired_rows(results)
    assert (stochastic_pair["actor"], stochastic_pair["n"], stochastic_pair["seeds"]) == ("stochastic", 1, "s0:+0.45")
    assert (pair["actor"], pair["comparison"], pair["n"], pair["seeds"]) == ("served", "postbc - bc", 2, "s0:+0.30 s1:+0.10")
    np.testing.assert_allclose([pair["diff"], pair["gain_diff"]], [0.2, 0.15])  # gains 0.6 / 0.4 against 0.4 / 0.3
    assert pair["diff_low"] < 0.2 < pair["diff_high"]
    assert abs(pair["p"] - 0.2952) < 1e-3  # diffs 0.3 and 0.1: t = 2 with 1 degree of freedom (Cauchy: 1 - 2 atan(2) / pi)


def test_a_resumed_runs_wall_time_comes_from_its_metrics_not_from_the_last_sweeps_marker():
    resumed = finetune_run(0, [0, 2000], [0.1, 0.2])
    resumed.metrics[-1]["wall_time"] = "3000.5"  # carried across resumes by the run's checkpoints
    assert run_wall({"wall_time_s": 1200.0}, resumed) == 3000.5
    assert run_wall({"wall_time_s": 1200.0}, finetune_run(1, [0, 2000], [0.1, 0.2])) == 1200.0  # no wall_time logged


def test_a_resumed_runs_cpu_time_is_its_logged_total_or_unknown_never_the_last_segment_alone():
    marker = {"wall_time_s": 1200.0, "cpu_time_s": 1100.0}
    resumed = finetune_run(0, [0, 2000], [0.1, 0.2])
    resumed.metrics[-1].update(wall_time="3000.5", cpu_time="2900.0")  # both carried across resumes
    assert run_cpu(marker, resumed) == 2900.0
    resumed.metrics[-1]["cpu_time"] = ""  # a run resumed by an older version logged no cpu_time
    assert np.isnan(run_cpu(marker, resumed))
    whole = finetune_run(1, [0, 2000], [0.1, 0.2])
    whole.metrics[-1].update(wall_time="1150.0", cpu_time="1000.0")  # env workers joined at close count in the marker
    assert run_cpu(marker, whole) == 1100.0
    whole.metrics[-1]["cpu_time"] = ""
    assert run_cpu(marker, whole) == 1100.0  # not resumed: the marker timed all of it


def test_a_postbc_pretrainings_cost_adds_its_ensemble_loop_which_may_have_run_in_an_earlier_segment(tmp_path):
    params = {"task": "can", "demos": 10, "method": "postbc", "seed": 0}
    stage = Stage("pretrain/s0", "pretrain", tmp_path, "m", "C", {}, params)
    (tmp_path / "ensemble_log").mkdir()
    (tmp_path / "ensemble_log" / "metrics.csv").write_text("epoch,loss,wall_time,cpu_time\n6000,-2.2,3300,3200\n")
    policy_log = [{"epoch": "3000", "loss": "0.1", "wall_time": "900", "cpu_time": "880"}]
    marker = {"wall_time_s": 1000.0, "cpu_time_s": 950.0}  # the last sweep ran the policy loop only
    resumed = Run(stage, "done", None, policy_log)
    assert (run_wall(marker, resumed), run_cpu(marker, resumed)) == (4200.0, 4080.0)
    policy_log[0]["cpu_time"] = ""  # the policy loop resumed under an older version: its first segment is unknown
    assert np.isnan(run_cpu(marker, resumed))
    bc = Run(Stage("pretrain/bc", "pretrain", tmp_path / "bc", "m", "C", {}, {**params, "method": "bc"}),
             "done", None, [{"epoch": "3000", "wall_time": "900", "cpu_time": "880"}])
    assert run_cpu(marker, bc) == 950.0  # one loop, one segment: the marker also timed data loading


def test_training_signals_keep_each_runs_logged_points_and_skip_rows_without_them():
    a, b = finetune_run(0, [0, 2000, 4000], [0.1, 0.2, 0.3]), finetune_run(1, [0, 2000], [0.1, 0.4])
    a.metrics[2].update(q_mean="12.5", alpha="0.3")  # the 2000 row (row 1 is the training-only row at 1500)
    a.metrics[3].update(q_mean="-3.0", alpha="", train_success="0.5")
    b.metrics[2].update(q_mean="7.0")
    group = signal_curves(SweepResults(Path("/nowhere"), config=None, runs=[a, b]))[("toy", 5, "dsrl")]
    assert group["signals"] == ["train_success", "q_mean", "alpha"] and group["x_key"] == "env_steps"
    x, y = group["runs"][("postbc", 0)]["q_mean"]
    assert x.tolist() == [2000.0, 4000.0] and y.tolist() == [12.5, -3.0]
    assert group["runs"][("postbc", 0)]["alpha"][0].tolist() == [2000.0]  # the empty alpha at 4000 is left out
    assert set(group["runs"][("postbc", 1)]) == {"q_mean"}
