"""Command line of the checkpointing package: ``checkpointing`` or ``python -m checkpointing``.

    checkpointing plan --steps L (--platform FILE|NAME | --levels "c:w:r,...") --algorithm NAME [--uf X] [--ub Y]
                       [--json] [--actions] [--forward-costs ...] [--backward-costs ...] [--option KEY=VALUE]
    checkpointing compare --steps L (--platform ... | --levels ...) [--uf X] [--ub Y] [--json] [--peer]
    checkpointing platforms [--json]
    checkpointing join --teeth L1,L2,... [--handle H] (--platform ... | --levels ...) [--algorithm NAME|all]
                       [--uf X] [--ub Y] [--handle-uf X] [--handle-ub Y] [--json] [--actions]
    checkpointing clean-checkpoints DIR [--dry-run] [--json]

``plan`` plans a schedule and reports what the simulator measures on it; ``compare`` runs every algorithm (with
``--peer`` also checkpoint_schedules' planners, translated by :mod:`checkpointing.interop`) and divides each
makespan by the optimum of Herrmann & Pallez (2020)'s dynamic programme.  ``clean-checkpoints`` lists the
checkpoint run directories in DIR and removes those whose owner process is dead (checkpointing/rundirs.py).
Makespans are in the DP convention (docs/checkpointing.md, "Makespan conventions"); ``makespan_peer_convention``
adds ``(l + 1) uf`` to compare with checkpoint_schedules' ``Sequence.makespan``.  Failures go through
checkpointing/exits.py: bad arguments exit with status 2 and one line on stderr naming the field, the value and
what is allowed; a schedule that does not fit the platform exits with status 3; ``--debug`` adds the traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

from .platform import Platform, PlatformError, PlatformNotFoundError, shipped_platforms
from .platform import load_platform as load_platform_file

__all__ = ["main"]

log = logging.getLogger("checkpointing.cli")

MAX_STEPS = 10**6  # the planners build the whole action list


class UsageError(Exception):
    """A command-line argument is invalid; the message names the field, the value and what is allowed."""

    exit_status = 2  # checkpointing/exits.py


class _Parser(argparse.ArgumentParser):
    """argparse with its errors turned into one-line :class:`UsageError` messages (no usage dump)."""

    def error(self, message):
        raise UsageError(message)


# ------------------------------------------------------------------------------------------------ arguments
def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--steps = {text!r}: expected an integer l >= 0 (the number of forward steps)") from None
    if not 0 <= value <= MAX_STEPS:
        raise UsageError(f"--steps = {text!r}: expected an integer 0 <= l <= {MAX_STEPS} (the number of forward "
                         f"steps; planning builds the whole action list)")
    return value


def _cost(flag: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} = {text!r}: expected a finite number >= 0")
    return value


def _step_costs(flag: str, text: str | None) -> list[float] | None:
    """Per-step costs: comma/space separated numbers, or ``@FILE`` holding them."""
    if text is None:
        return None
    source = text
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise UsageError(f"{flag} = {text!r}: file {str(path)!r} does not exist")
        source = path.read_text()
    try:
        return [float(x) for x in source.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"{flag} = {text!r}: expected numbers separated by commas or spaces, or @FILE") from None


def _option_value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _options(items: list[str]) -> dict:
    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option = {item!r}: expected KEY=VALUE, e.g. period=10")
        opts[key.replace("-", "_")] = _option_value(value)
    return opts


def load_platform(args) -> Platform:
    """The platform of ``--platform`` or ``--levels``, with ``--uf``/``--ub`` overriding its step costs."""
    uf, ub = _cost("--uf", args.uf), _cost("--ub", args.ub)
    if (args.platform is None) == (args.levels is None):
        raise UsageError("--platform / --levels: give exactly one of them (a platform file, or 'c:w:r,...')")
    try:
        if args.platform is not None:
            platform = load_platform_file(args.platform, field="--platform")
        else:
            platform = Platform.from_spec(args.levels, 1.0, 1.0)
            platform = Platform(platform.levels, 1.0, 1.0, name=f"levels {args.levels}")
    except PlatformNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except PlatformError as exc:
        flag = "--platform" if args.platform is not None else "--levels"
        raise UsageError(f"{flag}: {exc}") from None
    return platform.with_costs(uf=uf, ub=ub)


# ------------------------------------------------------------------------------------------------ commands
def run_plan(name: str, steps: int, platform: Platform, *, forward_costs=None, backward_costs=None,
             options=None) -> tuple[list, object]:
    """Plan with algorithm ``name`` and simulate the result: ``(actions, Report)``."""
    from .planners import plan
    from .simulator import simulate

    opts = dict(options or {})
    if forward_costs is not None:
        opts["forward_costs"] = forward_costs
    if backward_costs is not None:
        opts["backward_costs"] = backward_costs
    start = time.perf_counter()
    try:
        actions = plan(name, steps, platform, **opts)
    except TypeError as exc:  # an option the planner does not take
        raise UsageError(f"--option / per-step costs for {name!r}: {exc}") from None
    log.info("planned %s for l = %d in %.3f s: %d actions", name, steps, time.perf_counter() - start, len(actions))
    report = simulate(actions, platform, steps, forward_costs=forward_costs, backward_costs=backward_costs)
    return actions, report


def _check_algorithm(name: str) -> None:
    from .planners import PLANNERS

    if name not in PLANNERS:
        raise UsageError(f"--algorithm = {name!r}: unknown; one of {', '.join(sorted(PLANNERS))}")


def cmd_plan(args, out) -> int:
    steps = _steps(args.steps)
    platform = load_platform(args)
    _check_algorithm(args.algorithm)
    forward_costs = _step_costs("--forward-costs", args.forward_costs)
    backward_costs = _step_costs("--backward-costs", args.backward_costs)
    actions, report = run_plan(args.algorithm, steps, platform, forward_costs=forward_costs,
                               backward_costs=backward_costs, options=_options(args.option))
    result = {"algorithm": args.algorithm, "steps": steps, "platform": platform.name,
              "uf": platform.uf, "ub": platform.ub, "levels": platform.to_dict()["levels"],
              **report.to_dict()}
    if forward_costs is None:
        result["makespan_peer_convention"] = report.makespan + (steps + 1) * platform.uf
    if args.actions:
        result["actions"] = [str(a) for a in actions]
    if args.json:
        print(json.dumps(result), file=out)
        return 0
    print(_describe(platform), file=out)
    print(f"algorithm {args.algorithm}, l = {steps} forward steps", file=out)
    print(f"makespan {report.makespan:g}" + (f" (checkpoint_schedules convention: "
          f"{result['makespan_peer_convention']:g})" if "makespan_peer_convention" in result else ""), file=out)
    print(f"forward steps {report.forward_steps}, backward steps {report.backward_steps}", file=out)
    print(f"{'level':<12}{'reads':>8}{'writes':>8}{'peak':>8}", file=out)
    for lev, r, w, p in zip(platform.levels, report.reads, report.writes, report.peak):
        print(f"{lev.name:<12}{r:>8}{w:>8}{p:>8}", file=out)
    if args.actions:
        print("actions:", file=out)
        for a in actions:
            print(f"  {a}", file=out)
    return 0


def cmd_compare(args, out) -> int:
    from .emit import ScheduleDoesNotFit
    from .planners import PLANNERS, optimal_makespan

    steps = _steps(args.steps)
    platform = load_platform(args)
    optimum = optimal_makespan(steps, platform)
    rows = []
    for name in sorted(PLANNERS):
        try:
            _, report = run_plan(name, steps, platform)
        except (ScheduleDoesNotFit, UsageError, ValueError) as exc:  # the algorithm does not apply here
            rows.append({"algorithm": name, "makespan": None, "ratio": None, "note": str(exc)})
            continue
        rows.append({"algorithm": name, "makespan": report.makespan, "ratio": report.makespan / optimum,
                     "forward_steps": report.forward_steps, "note": ""})
    if args.peer:
        rows += _peer_rows(steps, platform, optimum)
    if args.json:
        print(json.dumps({"steps": steps, "platform": platform.name, "optimal_makespan": optimum,
                          "algorithms": rows}), file=out)
        return 0
    print(_describe(platform), file=out)
    print(f"l = {steps} forward steps; optimal makespan (H-Revolve DP) {optimum:g}", file=out)
    print(f"{'algorithm':<24}{'makespan':>12}{'/ optimum':>11}", file=out)
    for row in sorted(rows, key=lambda r: (r["makespan"] is None, r["makespan"] or 0.0)):
        if row["makespan"] is None:
            print(f"{row['algorithm']:<24}{'-':>12}{'-':>11}   {row['note']}", file=out)
        else:
            print(f"{row['algorithm']:<24}{row['makespan']:>12g}{row['ratio']:>11.4f}", file=out)
    return 0


def _peer_rows(steps: int, platform: Platform, optimum: float) -> list[dict]:
    """checkpoint_schedules' planners on the same platform, imported and costed by our simulator."""
    import contextlib
    import io

    from .interop import TranslationError, from_peer, peer_schedules
    from .simulator import simulate

    try:
        makers = peer_schedules(steps, platform)
    except TranslationError as exc:
        raise UsageError(f"--peer: {exc}") from None
    rows = []
    for name, make in makers.items():
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the peer prints its periods
                actions = from_peer(make())
            report = simulate(actions, platform, steps)
        except Exception as exc:  # the peer fails on some edge cases (e.g. IndexError for l = 0): report, go on
            rows.append({"algorithm": name, "makespan": None, "ratio": None,
                         "note": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append({"algorithm": name, "makespan": report.makespan, "ratio": report.makespan / optimum,
                     "forward_steps": report.forward_steps, "note": ""})
    return rows


def cmd_platforms(args, out) -> int:
    rows = []
    for name, path in shipped_platforms().items():
        try:
            platform = Platform.from_toml(path)
        except PlatformError as exc:
            raise UsageError(f"platform file {str(path)!r}: {exc}") from None
        rows.append({"file": str(path), **platform.to_dict()})
    if args.json:
        print(json.dumps(rows), file=out)
        return 0
    for row in rows:
        levels = ", ".join(f"{lev['name']} {lev['capacity']}:{lev['write']:g}:{lev['read']:g}" for lev in row["levels"])
        print(f"{Path(row['file']).stem:<18} uf {row['uf']:g}, ub {row['ub']:g}; {levels}", file=out)
    return 0


def _teeth(text: str) -> list[int]:
    try:
        lengths = [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        lengths = []
    if not lengths or any(not 0 <= x <= MAX_STEPS for x in lengths):
        raise UsageError(f"--teeth = {text!r}: expected comma-separated tooth lengths, integers 0..{MAX_STEPS}")
    return lengths


def cmd_join(args, out) -> int:
    """Plan a join graph with one planner or all of them (``checkpointing.join_planners``), simulate each."""
    from .emit import ScheduleDoesNotFit
    from .join_planners import JOIN_PLANNERS, join_plan
    from .joingraph import Branch, JoinGraph, simulate_join

    platform = load_platform(args)
    handle = _steps(args.handle)
    graph = JoinGraph(tuple(Branch(x) for x in _teeth(args.teeth)),
                      Branch(handle, _cost("--handle-uf", args.handle_uf), _cost("--handle-ub", args.handle_ub) or 0.0))
    names = sorted(JOIN_PLANNERS) if args.algorithm == "all" else [args.algorithm]
    if args.algorithm != "all" and args.algorithm not in JOIN_PLANNERS:
        raise UsageError(f"--algorithm = {args.algorithm!r}: unknown; one of all, {', '.join(sorted(JOIN_PLANNERS))}")
    rows = []
    for name in names:
        start = time.perf_counter()
        try:
            plan = join_plan(name, graph, platform)
        except ScheduleDoesNotFit as exc:
            if len(names) == 1:
                raise
            rows.append({"algorithm": name, "makespan": None, "note": " ".join(str(exc).split())})
            continue
        seconds = time.perf_counter() - start
        actions = plan.schedule()
        report = simulate_join(actions, graph, platform, structured=True)
        note = "" if plan.certificate is None else f"proven optimal by the lower bound {plan.certificate:g}"
        row = {"algorithm": name, "makespan": report.makespan, "plan_seconds": round(seconds, 4),
               "forward_checkpoints": plan.forward_checkpoints, "handle_slots": plan.handle_slots,
               **{k: v for k, v in report.to_dict().items() if k != "makespan"}, "note": note}
        if args.actions:
            row["actions"] = [str(a) for a in actions]
        rows.append(row)
    best = min((r["makespan"] for r in rows if r["makespan"] is not None), default=None)
    if args.json:
        print(json.dumps({"graph": graph.describe(), "teeth": graph.lengths, "handle": handle,
                          "levels": platform.to_dict()["levels"], "algorithms": rows}), file=out)
        return 0
    print(_describe(platform), file=out)
    print(f"join graph: {graph.describe()} (optimal: on levels 0 and 1 if level 1 is an unbounded disk; the others: "
          "level 0)", file=out)
    print(f"{'algorithm':<20}{'makespan':>12}{'/ best':>9}{'forward ckpts':>15}{'plan s':>9}", file=out)
    for row in rows:
        if row["makespan"] is None:
            print(f"{row['algorithm']:<20}{'-':>12}{'-':>9}{'-':>15}{'-':>9}   {row['note']}", file=out)
        else:
            print(f"{row['algorithm']:<20}{row['makespan']:>12g}{row['makespan'] / best:>9.4f}"
                  f"{row['forward_checkpoints']:>15}{row['plan_seconds']:>9.3f}   {row['note']}", file=out)
        for action in row.get("actions", []):
            print(f"  {action}", file=out)
    return 0


def cmd_clean_checkpoints(args, out) -> int:
    from . import rundirs

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"DIR = {str(directory)!r}: not a directory (give the --disk-dir of the runs)")
    found = rundirs.scan(str(directory))
    removed = {entry.path for entry in rundirs.remove_orphans(str(directory), dry_run=args.dry_run)}
    if args.json:
        print(json.dumps([{"path": e.path, "status": e.status, "files": e.files, "bytes": e.bytes,
                           "owners": [f"{p.host}:{p.pid}" for p in e.processes], "start": e.start,
                           "removed": e.path in removed and not args.dry_run} for e in found]), file=out)
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for entry in found:
        print(f"{verb if entry.path in removed else 'kept'}: {entry.describe()}", file=out)
    print(f"{len(found)} checkpoint run directories in {directory}; {verb} {len(removed)}", file=out)
    return 0


def _describe(platform: Platform) -> str:
    return f"platform {platform.name or '(unnamed)'}: " + platform.describe()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="checkpointing", description="Plan, cost and compare checkpointing schedules "
                     "(Revolve, Disk-Revolve, H-Revolve and heuristics) on multi-level storage platforms.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log progress (-vv: debug)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def chain_arguments(p):
        p.add_argument("--steps", required=True,
                       help="l, the number of forward steps of the chain (the DP planners take O(l^2) time)")
        p.add_argument("--platform", help="platform TOML file, or the name of a shipped one (checkpointing platforms lists them)")
        p.add_argument("--levels", help="levels 'c:w:r,c:w:r,...' fastest first; c may be 'inf'")
        p.add_argument("--uf", help="cost of a forward step (overrides the platform; default 1 with --levels)")
        p.add_argument("--ub", help="cost of a backward step (overrides the platform; default 1 with --levels)")
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    p = sub.add_parser("plan", help="plan one schedule and report its simulated cost")
    chain_arguments(p)
    p.add_argument("--algorithm", required=True, help="planner name (see 'compare' for the list)")
    p.add_argument("--actions", action="store_true", help="also print the action list")
    p.add_argument("--forward-costs", help="per-step costs uf_0..uf_{l-1}: '1,2,...' or @FILE")
    p.add_argument("--backward-costs", help="per-step costs ub_0..ub_l: '1,2,...' or @FILE")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra planner option, e.g. period=10 (repeatable)")
    p.set_defaults(run=cmd_plan)

    p = sub.add_parser("compare", help="all algorithms side by side, with the ratio to the optimum")
    chain_arguments(p)
    p.add_argument("--peer", action="store_true",
                   help="also cost checkpoint_schedules' planners (one or two levels) with our simulator")
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser("join", help="plan a join graph (teeth joined into a handle) with each join planner")
    p.add_argument("--teeth", required=True, help="tooth lengths l_1,...,l_p")
    p.add_argument("--handle", default="0", help="handle length h (default 0: no handle)")
    p.add_argument("--platform", help="platform TOML file, or the name of a shipped platform (level 0 is used)")
    p.add_argument("--levels", help="levels 'c:w:r,...' (level 0 is used)")
    p.add_argument("--uf", help="cost of a tooth's forward step (default 1 with --levels)")
    p.add_argument("--ub", help="cost of a tooth's backward step (default 1 with --levels)")
    p.add_argument("--handle-uf", help="cost of a handle forward step (default: --uf)")
    p.add_argument("--handle-ub", help="cost of a handle backward step (default 0)")
    p.add_argument("--algorithm", default="all", help="join planner name, or 'all' (default)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--actions", action="store_true", help="also print the action lists")
    p.set_defaults(run=cmd_join)

    p = sub.add_parser("platforms", help="list the shipped platform files (checkpointing/data/platforms)")
    p.add_argument("--json", action="store_true", help="print one JSON array on stdout")
    p.set_defaults(run=cmd_platforms)

    p = sub.add_parser("clean-checkpoints", help="remove checkpoint run directories whose owner process is dead")
    p.add_argument("directory", metavar="DIR", help="a --disk-dir of earlier runs")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("--json", action="store_true", help="print one JSON array on stdout")
    p.set_defaults(run=cmd_clean_checkpoints)
    return parser


def main(argv=None, out=None) -> int:
    """Run the command line; returns the exit status (checkpointing/exits.py: 0 success, 2 bad arguments, 3 schedule
    does not fit, 1 internal error)."""
    from .exits import report_failure
    from .rundirs import Terminated

    out = sys.stdout if out is None else out
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                            format="%(levelname)s %(name)s: %(message)s")
        return args.run(args, out)
    except (Exception, KeyboardInterrupt, Terminated) as exc:
        if type(exc) is ValueError:  # a planner's check of its arguments
            exc = UsageError(" ".join(str(exc).split()))
        return report_failure("checkpointing", exc, debug=debug)
