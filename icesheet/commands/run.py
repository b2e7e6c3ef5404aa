"""``icesheet run``: run a scenario forward in time; write VTK, PNG plots, a per-step CSV and a summary JSON.

All input is checked (scenario name, config keys and values, dt, steps, mesh and state files, the output directory:
icesheet/outdir.py) before Firedrake is imported; a thickness read with ``--initial-state`` is checked (finite,
>= 0) before the first step.  A time step above the stable one of the mesh and flow is split into sub-steps
(icesheet/stability.py); a run that leaves physical bounds stops with the steps done so far written.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from checkpointing.exits import one_line

from icesheet.errors import ScenarioError
from icesheet.outdir import check_output_directory
from icesheet.output import RUN_FILES
from icesheet.scenarios import DEFAULT_SCENARIO, SCENARIOS, build_model, check_state_file, scenario_parameters

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a scenario forward in time",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO,
                        help=f"one of {', '.join(sorted(SCENARIOS))} (default {DEFAULT_SCENARIO})")
    parser.add_argument("--config", type=Path, help="TOML file overriding the scenario's parameters "
                        "(same [sections] and keys as icesheet/data/scenarios/<scenario>.toml)")
    parser.add_argument("--steps", type=int, help="number of time steps (default: the scenario's time.steps)")
    parser.add_argument("--dt", type=float, help="time step in years (default: the scenario's time.dt)")
    parser.add_argument("--mesh-size", type=float, help="target cell size in metres (mesh.cell_size)")
    parser.add_argument("--mesh", type=Path, help="gmsh mesh file (mesh.file) with the scenario's boundary ids")
    parser.add_argument("--initial-state", type=Path,
                        help="HDF5 file written by IceModel.save_state: initial thickness and velocity")
    parser.add_argument("--out", type=Path, default=Path("out/run"), help="output directory (default %(default)s); "
                        "it must not hold the output of an earlier run unless --overwrite is given")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the output of an earlier run in --out (only the files a run writes)")
    parser.add_argument("--vtk-every", type=int, default=1, help="write VTK every N steps (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=main)


def prepare(args) -> dict:
    """Validated parameters for ``args`` (pure Python); raises ScenarioError naming the bad field."""
    overrides = {}
    if args.dt is not None:
        overrides["time.dt"] = args.dt
    if args.steps is not None:
        overrides["time.steps"] = args.steps
    if args.mesh_size is not None:
        overrides["mesh.cell_size"] = args.mesh_size
    if args.mesh is not None:
        overrides["mesh.file"] = str(args.mesh)
    parameters = scenario_parameters(args.scenario, args.config, overrides)
    if args.initial_state is not None:
        check_state_file(args.initial_state)
    if args.vtk_every < 1:
        raise ScenarioError(f"vtk_every = {args.vtk_every!r}: must be an integer >= 1")
    check_output_directory(args.out, RUN_FILES, args.overwrite)
    return parameters


def main(args) -> int:
    parameters = prepare(args)
    from icesheet.cli import import_firedrake

    import_firedrake()
    from icesheet.output import RunWriter

    model = build_model(args.scenario, parameters)
    if args.initial_state is not None:
        model.load_state(args.initial_state)
    steps, dt = parameters["time"]["steps"], parameters["time"]["dt"]
    writer = RunWriter(args.out, vtk_every=args.vtk_every)
    try:
        model.run(steps, dt, progress=not args.no_progress, on_step=writer.on_step)
    except BaseException as exc:  # a guard, a solver failure, SIGINT, SIGTERM: keep what was computed
        if writer.records:
            try:
                writer.finish(model, scenario=args.scenario, parameters=parameters, stopped=one_line(exc))
            except Exception as failure:  # e.g. the disk is full: report the first failure
                logger.warning("could not write the partial summary: %s", one_line(failure))
        raise
    summary = writer.finish(model, scenario=args.scenario, parameters=parameters)
    if model.mesh.comm.rank == 0:
        print(f"icesheet run: {args.scenario}, {steps} steps of {dt:g} yr: volume {summary['final_volume']:.6e} m^3, "
              f"VAF {summary['final_vaf']:.6e} m^3, {summary['total_picard_iterations']} Picard + "
              f"{summary['total_newton_iterations']} Newton + {summary['total_chord_iterations']} chord iterations, "
              f"{summary['wall_time']:.1f} s; output in {args.out}")
    return 0
