"""`postbc` command line: one subcommand per typed config dataclass.

Only the chosen subcommand's module is imported, so `postbc --help` and light commands start
fast; each module provides a config dataclass (its fields are the flags) and a `run(cfg)`.
"""

from __future__ import annotations

import importlib
import sys

from postbc.errors import PostBCError

# name -> (module, config class, summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("postbc.demo.command", "DemoConfig", "Collect demos, pretrain BC and PostBC, finetune both with DSRL and compare them (toy task by default; --task lift; --quick: ~2 min)."),
    "theory": ("postbc.theory.command", "TheoryConfig", "Run the tabular theory experiments (paper section 2)."),
    "pretrain": ("postbc.pretrain.command", "PretrainConfig", "Pretrain a diffusion policy from demos with bc, sigma_bc or postbc."),
    "finetune": ("postbc.finetune.command", "FinetuneConfig", "Finetune a pretrained policy with DSRL-SAC, DSRL-NA, DPPO or Best-of-N."),
    "best-of-n-fit": ("postbc.finetune.best_of_n_fit", "BestOfNFitConfig", "Fit the Best-of-N IQL critic on labelled rollouts (no simulator)."),
    "collect": ("postbc.experts.command", "CollectConfig", "Collect scripted demonstrations into a robomimic-style HDF5 file."),
    "eval": ("postbc.evaluation.command", "EvalConfig", "Success rate (95% interval) of a pretrained or finetuned policy on its task."),
    "inspect": ("postbc.data.inspect_command", "InspectConfig", "Describe a dataset: demos, lengths, keys, shapes, action ranges."),
    "task-key": ("postbc.data.task_keys", "TaskKeyConfig", "Add a per-task conditioning key (e.g. language embeddings) to a multi-task dataset."),
    "sweep": ("postbc.experiments.sweep_command", "SweepCommandConfig", "Run a grid of experiments (collect, pretrain, evaluate, finetune) on a process pool or Ray."),
    "report": ("postbc.experiments.report_command", "ReportConfig", "Tables, plots and an HTML page from a sweep directory."),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: postbc COMMAND [--help] [options]  |  postbc --version", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()]
    lines += ["", "Run `postbc COMMAND --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tyro

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from postbc import __version__

        print(f"postbc {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command '{name}'; known commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, config_name, summary = COMMANDS[name]
    module = importlib.import_module(module_name)
    config_cls = getattr(module, config_name)
    try:
        rest, default = _preset(module, rest)
        cfg = tyro.cli(config_cls, args=rest, prog=f"postbc {name}", description=summary, default=default)
    except (ValueError, PostBCError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        module.run(cfg)
    except PostBCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except KeyboardInterrupt:
        print("interrupted; everything written so far is kept and the run can be resumed", file=sys.stderr)
        return 130
    return 0


def _option_value(args: list[str], flag: str) -> tuple[str | None, list[str]]:
    """The value of `flag` (as `--flag V` or `--flag=V`) and the args without it."""
    for i, arg in enumerate(args):
        if arg == flag:
            if i + 1 == len(args):
                raise ValueError(f"{flag} needs a value")
            return args[i + 1], args[:i] + args[i + 2:]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1], args[:i] + args[i + 1:]
    return None, args


def _preset(module, args: list[str]):
    """`--preset NAME` (commands whose module has `preset_defaults`): the defaults tyro starts from."""
    if not hasattr(module, "preset_defaults"):
        return args, None
    name, rest = _option_value(args, "--preset")
    if name is None:
        return args, None
    task, _ = _option_value(rest, "--task")
    return rest, module.preset_defaults(name, task)


if __name__ == "__main__":
    sys.exit(main())
