"""`postbc report` on a real, partial sweep of the tiny toy grid."""

import csv
import json
import shutil
from pathlib import Path

from postbc.cli import main
from postbc.experiments import markers

REPO = Path(__file__).resolve().parents[2]


def test_report_on_a_partial_sweep(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", str(REPO / "configs" / "toy_tiny.toml"), "--out", str(out), "--only=-s0", "--max-workers", "2"]) == 0
    assert "% of" in capsys.readouterr().out  # the pool's utilisation of this machine's cores
    # make it partial: one finetuning run failed, the seed-1 stages never ran
    failed = out / "finetune" / "toy-d4-postbc-dsrl-s0"
    (failed / markers.DONE).unlink()
    markers.write_failed(failed, {"error": "RuntimeError: boom"})
    shutil.rmtree(out / "final" / failed.name)  # so its final evaluation never ran
    assert main(["report", str(out), "--region-episodes", "10"]) == 0
    report = out / "report"
    page = (report / "report.html").read_text()
    with open(report / "toy_success_by_start.csv") as f:
        regions = {(r["method"], r["policy"], r["start"]) for r in csv.DictReader(f)}
    assert regions == {(m, "pretrained", s) for m in ("bc", "postbc") for s in ("pocket", "common")} | \
        {("bc", "dsrl", "pocket"), ("bc", "dsrl", "common")}
    assert "Toy: success by start region" in page
    assert page.count("data:image/png;base64,") == 5  # bars, curves, training signals, ensemble std, action density
    assert "RuntimeError: boom" in page and "missing" in page
    with open(report / "pretrained_success.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert rows["bc"]["n"] == "1" and rows["bc"]["planned"] == "2" and 0 <= float(rows["postbc"]["mean"]) <= 1
    assert rows["bc"]["per_seed"] == f"s0:{float(rows['bc']['mean']):.3f}"
    with open(report / "pretrained_paired_differences.csv") as f:  # claim 1 seed by seed
        [pair] = list(csv.DictReader(f))
    assert (pair["comparison"], pair["n"]) == ("postbc - bc", "1")
    assert float(pair["diff"]) == float(rows["postbc"]["mean"]) - float(rows["bc"]["mean"])
    with open(report / "finetune_success.csv") as f:
        methods = {r["method"] for r in csv.DictReader(f)}
    assert methods == {"bc"}  # the failed postbc run is not aggregated
    assert (report / "curves_toy_d4.png").stat().st_size > 1000
    with open(report / "steps_to_threshold.csv") as f:
        assert {(r["method"], r["threshold"]) for r in csv.DictReader(f)} == {("bc", "0.5"), ("bc", "0.9")}
    assert "Steps to a success threshold" in page
    assert "Training signals" in page and (report / "signals_toy_d4_dsrl.png").exists()
    assert "no seed finished by both methods of a pair yet" in page  # postbc's only run failed
    assert (report / "paired_differences.md").read_text() == "(no finished runs)\n"
    with open(report / "final_success.csv") as f:  # the finished finetuned policy, on 8 episodes, with both actors
        finals = {r["actor"]: r for r in csv.DictReader(f)}
    assert set(finals) == {"served", "stochastic"}
    for actor, final in finals.items():  # each is what `postbc eval` reports for it on the same episodes
        option = ["--actor", "stochastic"] if actor == "stochastic" else []
        assert main(["eval", "--checkpoint", str(out / "finetune" / "toy-d4-bc-dsrl-s0"), "--episodes", "8", "--seed",
                     "1000", "--out", str(tmp_path / f"{actor}.json"), *option]) == 0
        assert (final["method"], final["episodes"], final["n"]) == ("bc", "8", "1")
        assert float(final["mean"]) == json.loads((tmp_path / f"{actor}.json").read_text())["success_rate"]
    assert "Final evaluation" in page and (report / "final_paired_differences.md").read_text() == "(no finished runs)\n"
    with open(report / "final_episode_gains.csv") as f:  # paired on the pretrained evaluation's 4 episodes
        gains = {r["actor"]: r for r in csv.DictReader(f)}
    assert set(gains) == {"served", "stochastic"} and "Per-episode paired tests" in page
    for g in gains.values():
        assert (g["method"], g["seed"], g["episodes"]) == ("bc", "0", "4")
        assert int(g["gained"]) - int(g["lost"]) == round(4 * (float(g["finetuned"]) - float(g["pretrained"])))
        assert float(g["pretrained"]) == float(rows["bc"]["mean"])  # the same seed's pretrained evaluation
    assert (report / "final_episode_differences.md").read_text() == "(no finished runs)\n"
    with open(report / "critic_vs_returns.csv") as f:  # 32 env steps per env: not one whole 60-step episode
        critics = list(csv.DictReader(f))
    assert [(r["method"], r["seed"]) for r in critics] == [("bc", "0")]
    assert "no training episode can be rebuilt whole" in critics[0]["note"] and "Critic vs returns" in page
    with open(report / "cost.csv") as f:
        cost = {r["kind"]: r for r in csv.DictReader(f)}
    assert int(cost["pretrain"]["runs"]) == 2 and float(cost["pretrain"]["cpu_h"]) > 0
    assert float(cost["finetune"]["env_steps_per_s"]) > 0 and int(cost["finetune"]["runs"]) == 1  # the failed one is out
    assert float(cost["finetune"]["cpu_h"]) > 0 and cost["finetune"]["cpu_runs"] == "1"
    assert (cost["finetune"]["algo"], cost["final"]["algo"], cost["pretrain"]["algo"]) == ("dsrl", "dsrl", "")
    status = (report / "status.md").read_text()
    assert "| finetune/toy-d4-postbc-dsrl-s0 | failed | RuntimeError: boom |" in status
    assert "| pretrain/toy-d4-bc-s1 | missing |" in status

    # a sweep with nothing finished still gives a page
    shutil.rmtree(out / "pretrain")
    shutil.rmtree(report)
    assert main(["report", str(out), "--region-episodes", "10"]) == 0
    assert "no finished postbc run yet" in (report / "report.html").read_text()


def test_report_refuses_a_non_sweep_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a sweep directory" in capsys.readouterr().err


def test_multi_task_evaluations_get_a_per_task_table(tmp_path):
    import json

    from postbc.experiments.config import parse_sweep_config
    from postbc.experiments.plan import plan_sweep
    from postbc.experiments.results import load_results, per_task_rows

    config = {"name": "mt", "grid": {"tasks": ["mt10"], "demos": [10], "methods": ["bc"], "algos": [], "seeds": [0, 1]}}
    (tmp_path / "sweep.json").write_text(json.dumps({"source": "x", "config": config}))
    for stage in plan_sweep(parse_sweep_config(config, "x"), tmp_path):
        if stage.kind == "eval":
            seed = stage.params["seed"]
            stage.dir.mkdir(parents=True)
            per_task = {"reach": {"success_rate": 0.9 + 0.1 * seed}, "push": {"success_rate": 0.2}}
            (stage.dir / "eval.json").write_text(json.dumps({"success_rate": 0.5, "per_task": per_task}))
            markers.write_done(stage.dir, {"wall_time_s": 1.0})
    rows = {r["sub_task"]: r for r in per_task_rows(load_results(tmp_path))}
    assert rows["reach"]["n"] == 2 and abs(rows["reach"]["mean"] - 0.95) < 1e-9 and rows["push"]["mean"] == 0.2
