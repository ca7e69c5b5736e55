"""The `hiors` command: up, replay, eval, pretrain, export, report, and `bench` when hiors_bench is installed."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from hiors_core.errors import HiorsError

from .processes import node_env_defaults


def _up(a) -> int:
    from .up import UpOptions, run_up

    return run_up(
        UpOptions(
            robot=a.robot,
            task=a.task or "",
            sim=a.sim,
            episodes=a.episodes,
            demos=a.demos,
            run_dir=a.run_dir,
            policy=a.policy or "",
            base=a.base or "",
            eval_states=a.eval_states,
            seed=a.seed,
            operator=a.operator,
            timeout_s=a.timeout,
            overrides=tuple(parse_set(x) for x in a.set),
        )
    )


def parse_set(text: str) -> tuple[str, str, object]:
    """`node.parameter=value` (value read as YAML: 8, 2.5e-5, true, dual) -> (node, parameter, value)."""
    import yaml

    key, sep, value = text.partition("=")
    node, dot, param = key.strip().partition(".")
    if not sep or not dot or not node or not param:
        raise HiorsError(f"--set {text!r}: expected node.parameter=value, e.g. learner.utd_target=8")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as e:
        raise HiorsError(f"--set {text!r}: the value is not readable: {e}") from None
    if not isinstance(parsed, str | int | float | bool | list):
        raise HiorsError(f"--set {text!r}: a parameter value must be a number, a string, a boolean or a list")
    return node, param, parsed


def _replay(a) -> int:
    from .replay import replay

    n = replay(a.bag, rate=a.rate, topic_prefix=a.prefix, loop=a.loop)
    print(f"replayed {n} messages from {a.bag}")
    return 0


def _report(a) -> int:
    from .report import report

    for line in report(a.run):
        print(line)
    return 0


def _eval(a) -> int:
    from .evaluate import run_eval

    return run_eval(a)


def _pretrain(a) -> int:
    from .pretrain import run_pretrain

    return run_pretrain(a)


def _export(a) -> int:
    from .export import export_lerobot

    out = export_lerobot(a.run, a.out, accepted_only=not a.all)
    print(f"wrote LeRobot dataset to {out}")
    return 0


def _plugin_commands():
    """Sub-commands that other installed packages add (entry-point group `hiors.commands`: a function taking the
    sub-parsers): the measurement package sits above this one, so this package never imports it by name."""
    from importlib.metadata import entry_points

    return [ep.load() for ep in sorted(entry_points(group="hiors.commands"), key=lambda ep: ep.name)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hiors", description="Hi-ORS: human-in-the-loop online rejection sampling on ROS 2."
    )
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start a robot's graph and run the Hi-ORS loop")
    up.add_argument("robot", choices=["tora_one", "xtrainer"])
    up.add_argument("--task", help="task name (default: the robot's first task)")
    up.add_argument("--sim", action="store_true", help="use the MuJoCo twin, simulated operator and oracle")
    up.add_argument(
        "--episodes",
        type=int,
        default=12,
        help="online episodes in the run (default 12); a resumed run runs the ones it still lacks",
    )
    up.add_argument(
        "--demos", type=int, help="scripted initial demonstrations to record first (default 8; none with --base)"
    )
    up.add_argument(
        "--run-dir",
        default="",
        help="run folder (default runs/<robot>-<time>); the folder of an earlier run resumes it: its episode count, "
        "demonstrations, starting policy and learner checkpoint carry on",
    )
    up.add_argument("--policy", help="pi0 checkpoint folder (default: tiny pi0 built offline)")
    up.add_argument(
        "--base",
        help="a `hiors pretrain --out` folder: start from its policy/ and give the learner its demos/ "
        "(no new demonstrations are recorded)",
    )
    up.add_argument(
        "--eval-states",
        type=int,
        default=0,
        help="after the online episodes, evaluate the starting and the final policy without the operator on this "
        "many held-out initial states (default 0: no evaluation)",
    )
    up.add_argument("--seed", type=int, help="seed of the run's initial states (default 0, or a resumed run's own)")
    up.add_argument("--operator", choices=["intervene", "never"], default="intervene", help="simulated operator mode")
    up.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    up.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter of config/<robot>.yaml (repeatable), e.g. learner.utd_target=8",
    )
    up.set_defaults(func=_up)

    rp = sub.add_parser("replay", help="republish an episode bag with its original timing")
    rp.add_argument("bag")
    rp.add_argument("--rate", type=float, default=1.0)
    rp.add_argument("--prefix", default="", help="prefix for the republished topic names")
    rp.add_argument("--loop", action="store_true")
    rp.set_defaults(func=_replay)

    ev = sub.add_parser("eval", help="run the policy without the operator; success vs time budget and vs retries")
    ev.add_argument("robot", choices=["tora_one", "xtrainer"])
    ev.add_argument("--task")
    ev.add_argument("--policy", help="checkpoint folder (default: the tiny policy)")
    ev.add_argument("--run", help="a `hiors up` run folder: evaluate its learner's latest weights")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument(
        "--budgets",
        default="",
        help="main curve: time budgets of the one long attempt per initial state, as multiples of the time limit, "
        "comma-separated (default: evaluate.DEFAULT_BUDGETS, 1,1.5,2,3)",
    )
    ev.add_argument("--retries", type=int, default=3, help="pass@k view: largest number of tries over resets (0: skip)")
    ev.add_argument("--seed", type=int, default=1000)
    ev.add_argument("--time-limit", type=float, default=0.0, help="the task's time limit in seconds (default: its own)")
    ev.add_argument("--run-dir", default="")
    ev.set_defaults(func=_eval)

    pt = sub.add_parser("pretrain", help="the base policy: behaviour cloning on scripted demonstrations")
    pt.add_argument("robot", choices=["tora_one", "xtrainer"])
    pt.add_argument("--task", default="", help="task name (default: the robot's first task)")
    pt.add_argument("--demos", type=int, default=40, help="scripted demonstrations to record (default 40)")
    pt.add_argument("--steps", type=int, default=400, help="gradient steps (default 400)")
    pt.add_argument("--batch-size", type=int, default=32)
    pt.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (warm-up, cosine decay)")
    pt.add_argument(
        "--goal-state", action="store_true", help="twin-only variant: the state also carries the task's goal"
    )
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--eval-every", type=int, default=100, help="steps between learning-curve points")
    pt.add_argument("--val-states", type=int, default=0, help="validation initial states per curve point")
    pt.add_argument("--out", default="", help="output folder (default runs/pretrain-<robot>-<task>-<time>)")
    pt.set_defaults(func=_pretrain)

    ex = sub.add_parser("export", help="write a run's accepted episodes as a LeRobot dataset")
    ex.add_argument("run")
    ex.add_argument("--lerobot", action="store_true", required=True, help="LeRobot v2 layout (the only format)")
    ex.add_argument("--out", default="")
    ex.add_argument("--all", action="store_true", help="include rejected episodes too")
    ex.set_defaults(func=_export)

    rep = sub.add_parser("report", help="learning curves and filter statistics of a run")
    rep.add_argument("run")
    rep.set_defaults(func=_report)

    for command in _plugin_commands():  # e.g. `bench`, from hiors_bench
        command(sub)
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # In-process twins (demonstrations, eval, bench) render offscreen; MuJoCo reads this at import.
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    # Before torch loads, as for the node processes (see node_env_defaults).
    os.environ.setdefault("OMP_WAIT_POLICY", node_env_defaults()["OMP_WAIT_POLICY"])
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, systemd, CI: stop the graph in order, as on Ctrl-C
    try:
        return int(args.func(args) or 0)
    except HiorsError as e:
        print(f"hiors {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hiors {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
