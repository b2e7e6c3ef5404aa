"""The stable time step by construction (icesheet/stability.py) across scenarios and cell sizes: does the default run
keep the thickness clamp below 0.1 % of the volume at every step, and what do the sub-steps cost?

    python -m benchmarks.bench_stability --save                # the saved table (see CASES; about 3 h here)
    python -m benchmarks.bench_stability --case marine_ice_stream:5000:20 --case ice_shelf_ramp:1000:0

Each case ``scenario:cell_size:steps`` (``steps`` 0: the scenario's) runs ``IceModel.run`` with the scenario's
default dt, the rule and the physics guard on (icesheet/timeloop.py), and reports the stable time step at the end,
the sub-steps taken, the largest clamped volume of a step relative to the volume, the first step whose clamp adds
more than 0.1 % of the volume, the volume change, the wall time and the load average.  A case ending in ``:off``
runs with the rule and the guard off (``stable=False``): the issue's 5 km case then blows up at step 18.
Results: benchmarks/results/bench_stability.{csv,json}.

Saved runs (28-29 Nov 2026, 2 cores shared with other work, load average 1-14; the ``load`` column is the load when
a case started).  With the rule no step of any case clamps anything: the largest clamped fraction is 0 in every case,
so the goal (< 0.1 %) holds down to 1 km for every shallow-stream scenario.  Marine ice stream, 20 steps of 10 yr:
10 km 56 sub-steps (41 s); 5 km 80 (137 s), where the same run without the rule clamps 18 % of the volume in a step,
first above 0.1 % at step 18, and gains 60 % volume; 2 km 142 sub-steps, 4-10 per step (366 s); 1 km 211 sub-steps,
5-16 per step, the bound falling from 2.1 to 0.64 yr as the flow speeds up (5000 s).  MISMIP+ Ice0 and Ice1r from
their uniform initial thickness (dt = 2 yr, 50 steps) at 2 and 1 km: never split (bound 8.7-13 yr).  Ice-shelf ramp
at 1-2 km: never split.  Van der Veen shelf (dt = 50 yr): the Courant bound splits its steps 8-13-fold at 2 km (329
sub-steps) and 16-fold at 1 km (654).  Not run: Ice1ra (its default run, without --initial-state, is Ice0's), and the
Halfar dome (the shallow-ice model: implicit, no coupling limit, and at 1 km over 10^6 triangles, which the input
check refuses).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: the saved runs: the issue's 5 km case with and without the rule, then every shallow-stream scenario at 2 and 1 km
#: over its default run (the 1 km marine ice stream takes about 1.5 h on 2 shared cores)
CASES = ["marine_ice_stream:5000:20:off", "marine_ice_stream:10000:20", "marine_ice_stream:5000:20",
         "ice_shelf_ramp:1000:0", "van_der_veen_shelf:1000:0", "marine_ice_stream:2000:0", "van_der_veen_shelf:2000:0",
         "ice_shelf_ramp:2000:0", "mismip_ice0:2000:0", "mismip_ice1r:2000:0", "mismip_ice0:1000:0",
         "mismip_ice1r:1000:0", "marine_ice_stream:1000:0"]


def run_case(scenario: str, cell_size: float, steps: int, stable: bool) -> dict:
    from icesheet.scenarios import build_model, scenario_parameters
    from icesheet.stability import time_step_limit

    parameters = scenario_parameters(scenario, overrides={"mesh.cell_size": cell_size})
    steps = steps or parameters["time"]["steps"]
    dt = parameters["time"]["dt"]
    model = build_model(scenario, parameters)
    start = time.perf_counter()
    load = os.getloadavg()[0]
    row = {"scenario": scenario, "cell_size": cell_size, "rule": stable, "dt": dt, "steps": steps,
           "cells": model.mesh.num_cells()}
    records = []

    def on_step(model, record):  # a line per step, so that a long case shows its progress (and partial figures)
        records.append(record)
        print(f"  {scenario} {cell_size:g} m step {record['step']}: {record['substeps']} sub-steps, clamped "
              f"{record['clamped_volume'] / record['volume'] if record['volume'] else 0:.3g} of the volume, "
              f"{record['wall_time']:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)

    try:
        model.run(steps, dt, progress=False, stable=stable, guard=None if stable else False, on_step=on_step)
        row["stopped"] = ""
    except Exception as exc:  # the unguarded runs blow up: record how far they got
        row["stopped"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    end_limit = time_step_limit(model) if math.isfinite(records[-1]["volume"]) else None
    fractions = [r["clamped_volume"] / r["volume"] for r in records[1:] if r["volume"] > 0]
    row.update({
        "steps_done": len(records) - 1,
        "substeps": sum(r["substeps"] for r in records[1:]),
        "stable_dt_end": end_limit.dt if end_limit else math.nan,
        "max_clamped_fraction": max(fractions, default=0.0),
        "first_step_over_0.1%": next((r["step"] for r in records[1:] if r["clamped_volume"] > 1e-3 * r["volume"]), 0),
        "volume_change": records[-1]["volume"] / records[0]["volume"] - 1,
        "wall_time_s": time.perf_counter() - start, "load": load,
    })
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    from icesheet.cli import import_firedrake

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append",
                        help="scenario:cell_size:steps[:off] (repeatable; default: CASES)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/bench_stability.*")
    parser.add_argument("--append", action="store_true",
                        help="with --save: add each case's row to the saved table as it ends (replacing a row of the "
                             "same scenario, cell size, steps and rule) instead of writing a new table")
    args = parser.parse_args(argv)
    import_firedrake()
    rows = []
    for case in args.case or CASES:
        scenario, size, steps, *off = case.split(":")
        rows.append(run_case(scenario, float(size), int(steps), stable=off != ["off"]))
        if args.save and args.append:
            save(rows[-1:], append=True)
    if args.save and not args.append:
        save(rows)
    return 0


def save(rows: list[dict], append: bool = False) -> None:
    """Write ``rows`` to benchmarks/results/bench_stability.{json,csv}; ``append``: merged into the saved rows."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "bench_stability.json"
    if append and path.exists():
        key = ("scenario", "cell_size", "steps", "rule")
        new = {tuple(r[k] for k in key) for r in rows}
        rows = [r for r in json.loads(path.read_text()) if tuple(r[k] for k in key) not in new] + rows
    path.write_text(json.dumps(rows, indent=2) + "\n")
    with open(RESULTS / "bench_stability.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    raise SystemExit(main())
