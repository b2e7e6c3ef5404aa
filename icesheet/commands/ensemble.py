"""``icesheet ensemble``: the gradient of the mean of a functional over an ensemble of runs under different
accumulations, with respect to a shared control, on a join-graph schedule (icesheet/ensemble.py, docs/join_graphs.md).

Each run starts from the scenario's initial state and takes ``--steps`` steps of ``--dt`` years with its own
accumulation (``--accumulations 0.2,0.3,0.5``, m/yr); J is the mean of ``--functional`` at the runs' ends, or with
``--target T`` its misfit ``(mean - T)^2 / (2T)``, which seeds every run's adjoint with a value known only when all
runs have ended.  The
schedule is planned by a join planner (``--schedule``: optimal, sequential, one-after-another, even-split) for
``--ram-slots`` checkpoints shared by all runs; it is planned and checked before Firedrake is imported, so a budget
that cannot hold it fails with one line.  Writes ``summary.json`` (J, executed counts beside the simulator's
prediction, peak RSS) and ``gradient.pvd`` (the gradient's L2 Riesz representative) to ``--out``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.join_planners import JOIN_PLANNERS, join_plan
from checkpointing.platform import Level, Platform
from icesheet.controls import CONTROLS
from icesheet.errors import InputError
from icesheet.functionals import FUNCTIONALS
from icesheet.scenarios import scenario_parameters

SCENARIO = "marine_ice_stream"


def register(subparsers) -> None:
    parser = subparsers.add_parser("ensemble", help="gradient of an ensemble mean on a join-graph schedule",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accumulations", required=True, help="one accumulation per run, m/yr: '0.2,0.3,0.5'")
    parser.add_argument("--functional", default="vaf", help=f"one of {', '.join(FUNCTIONALS[:2])} (default vaf)")
    parser.add_argument("--control", default="friction", help="shared control (default friction)")
    parser.add_argument("--target", type=float, help="J = (mean - T)^2 / (2T) for this T (units of the functional)")
    parser.add_argument("--steps", type=int, default=5, help="time steps per run (default 5)")
    parser.add_argument("--dt", type=float, default=10.0, help="time step in years (default 10)")
    parser.add_argument("--mesh-size", type=float, help="target cell size in metres (mesh.cell_size)")
    parser.add_argument("--ram-slots", type=int, required=True, help="checkpoints held in RAM, shared by all runs")
    parser.add_argument("--schedule", default="optimal", help=f"one of {', '.join(sorted(JOIN_PLANNERS))}")
    parser.add_argument("--out", type=Path, default=Path("output/ensemble"), help="output directory")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line (rank 0)")
    parser.set_defaults(handler=main)


def prepare(args) -> dict:
    """Check every input and plan the schedule (pure Python); raises InputError naming the field."""
    try:
        accumulations = [float(a) for a in args.accumulations.split(",")]
    except ValueError:
        raise InputError(f"accumulations = {args.accumulations!r}: expected comma-separated numbers (m/yr)") from None
    if args.functional not in FUNCTIONALS[:2]:
        raise InputError(f"functional = {args.functional!r}: choose one of {', '.join(FUNCTIONALS[:2])}")
    if args.control not in CONTROLS or args.control == "thickness":
        raise InputError(f"control = {args.control!r}: choose a shared parameter, one of "
                         f"{', '.join(c for c in CONTROLS if c != 'thickness')}")
    if args.target is not None and not args.target > 0:
        raise InputError(f"target = {args.target}: must be > 0 (units of the functional)")
    if args.steps < 1 or not args.dt > 0:
        raise InputError(f"steps = {args.steps}, dt = {args.dt}: need steps >= 1 and dt > 0")
    if args.schedule not in JOIN_PLANNERS:
        raise InputError(f"schedule = {args.schedule!r}: unknown; choose one of {', '.join(sorted(JOIN_PLANNERS))}")
    if args.ram_slots < 1:
        raise InputError(f"ram_slots = {args.ram_slots}: must be an integer >= 1")
    from checkpointing.joingraph import Branch, JoinGraph

    graph = JoinGraph((Branch(args.steps),) * len(accumulations))
    platform = Platform((Level(args.ram_slots, name="ram"),))
    try:
        plan = join_plan(args.schedule, graph, platform)
    except ScheduleDoesNotFit as err:
        raise InputError(f"ram_slots = {args.ram_slots}: {err}") from None
    overrides = {} if args.mesh_size is None else {"mesh.cell_size": args.mesh_size}
    return {"accumulations": accumulations, "plan": plan, "platform": platform,
            "parameters": scenario_parameters(SCENARIO, overrides=overrides)}


def main(args) -> int:
    request = prepare(args)
    from icesheet.cli import import_firedrake

    import_firedrake()
    import firedrake as fd

    from checkpointing.adjoint import RamTier
    from checkpointing.adjoint.join import JoinManager
    from icesheet.controls import riesz_representative
    from icesheet.ensemble import ensemble_loop
    from icesheet.scenarios import build_model

    model = build_model(SCENARIO, request["parameters"])
    loop = ensemble_loop(model, request["accumulations"], args.steps, args.dt, args.functional, (args.control,),
                         args.target)
    plan, platform = request["plan"], request["platform"]
    result = JoinManager(loop, [RamTier(args.ram_slots, "ram")]).run(plan.schedule(), platform)
    gradient = riesz_representative(result.gradient[0])
    gradient.rename(f"gradient_{args.control}")
    args.out.mkdir(parents=True, exist_ok=True)
    fd.VTKFile(str(args.out / "gradient.pvd")).write(gradient)
    counters = result.counters
    summary = {"accumulations": request["accumulations"], "steps": args.steps, "dt": args.dt,
               "functional": args.functional, "control": args.control, "schedule": args.schedule,
               "ram_slots": args.ram_slots, "target": args.target, "mean": result.join, "value": result.value,
               "gradient_norm": fd.norm(gradient),
               "predicted_makespan": plan.value, "wall_time": counters.wall_time,
               "measured": {k: getattr(counters, k) for k in ("forward_steps", "backward_steps", "reads", "writes",
                                                                "peak")},
               "predicted": {k: v for k, v in result.predicted.to_dict().items() if k != "violations"},
               "mismatches": counters.mismatches(result.predicted), "peak_rss_mb": counters.peak_rss_mb}
    if model.mesh.comm.rank == 0:
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"icesheet ensemble: mean {args.functional} of {len(request['accumulations'])} runs x {args.steps} "
              f"steps, {args.schedule} schedule in {args.ram_slots} slots: J = {result.value:.6e}, forward steps "
              f"{counters.forward_steps}, {counters.wall_time:.1f} s; output in {args.out}")
        if args.json:
            print(json.dumps({**summary, "ranks": model.mesh.comm.size}))
    return 0 if not summary["mismatches"] else 1
