"""Time to plan join graphs (checkpointing/join_planners.py): the optimum (exact label DP, or beyond its table the
teeth-one-after-another DP proven optimal by a lower bound), against the goal of issue 13 (4 teeth of 200 steps,
20 slots, under 10 s).

Each case plans once in this process (wall time of ``join_plan``, not of building the action list), then builds the
schedule and checks it with the simulator (untimed; its makespan is printed beside the plan's value).  The exact DP
keeps ``c * prod_b (l_b + 2)`` table entries; beyond its limit (``MAX_ENTRIES``) the optimal planner returns the
teeth-one-after-another schedule when a lower bound proves it optimal, and refuses otherwise (a row of the table).
uf = ub = 1, free reads and writes, no handle unless said; rows with ``disk`` add an unbounded level 1 with writes
and reads of cost 2 (the optimum plans on both levels, the others on level 0).  Timings move with the machine's
load: the load average is recorded beside them.

Usage:  python benchmarks/bench_join.py [--quick]
Writes benchmarks/results/bench_join.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checkpointing.emit import ScheduleDoesNotFit  # noqa: E402
from checkpointing.join_planners import join_plan  # noqa: E402
from checkpointing.joingraph import Branch, JoinGraph, simulate_join  # noqa: E402
from checkpointing.platform import Level, Platform  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ("planner", "teeth", "length", "handle", "slots", "disk", "plan_s", "makespan", "simulated",
           "table_entries", "note", "load")

#: (planner, teeth, tooth length, handle length, slots)
CASES = [
    ("sequential", 4, 200, 0, 20), ("sequential", 4, 200, 50, 20), ("sequential", 8, 200, 0, 20),
    ("sequential", 4, 1000, 0, 20), ("one-after-another", 4, 200, 0, 20), ("even-split", 4, 200, 0, 20),
    ("optimal", 4, 200, 0, 20), ("optimal", 4, 200, 50, 20), ("optimal", 4, 200, 0, 6), ("optimal", 2, 200, 0, 20),
    ("optimal", 2, 200, 50, 20), ("optimal", 3, 60, 0, 20),
    ("optimal", 3, 80, 0, 20), ("optimal", 4, 24, 0, 20), ("optimal", 4, 30, 0, 12),
    ("sequential", 2, 200, 0, 20), ("sequential", 3, 80, 0, 20), ("sequential", 4, 24, 0, 20),
    ("optimal", 2, 200, 0, 20, True), ("optimal", 2, 200, 0, 5, True), ("optimal", 3, 40, 0, 8, True),
    ("sequential", 2, 200, 0, 5, True),
]
QUICK = [c for c in CASES if c[1] * c[2] <= 400]


def run_case(planner: str, teeth: int, length: int, handle: int, slots: int, disk: bool = False) -> dict:
    graph = JoinGraph((Branch(length),) * teeth, Branch(handle, None, 1.0 if handle else 0.0))
    levels = (Level(slots),) + ((Level(math.inf, 2.0, 2.0),) if disk else ())
    platform = Platform(levels, uf=1.0, ub=1.0)
    entries = slots * (length + 2) ** teeth
    row = {"planner": planner, "teeth": teeth, "length": length, "handle": handle, "slots": slots, "disk": disk,
           "table_entries": entries if planner == "optimal" else "", "load": round(os.getloadavg()[0], 2)}
    start = time.perf_counter()
    try:
        plan = join_plan(planner, graph, platform)
    except ScheduleDoesNotFit as exc:
        return {**row, "plan_s": round(time.perf_counter() - start, 4), "makespan": "", "simulated": "",
                "note": " ".join(str(exc).split())}
    seconds = time.perf_counter() - start
    report = simulate_join(plan.schedule(), graph, platform, structured=True)
    note = "" if plan.certificate is None else f"proven optimal: lower bound {plan.certificate:.6g}"
    return {**row, "plan_s": round(seconds, 4), "makespan": plan.value, "simulated": report.makespan, "note": note}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the small cases")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'planner':<18}{'p':>3}{'l':>6}{'h':>4}{'c':>4}{'disk':>5}{'plan s':>9}{'makespan':>10}{'simulated':>11}"
          f"{'entries':>10}{'load':>6}  note", flush=True)
    for case in QUICK if args.quick else CASES:
        row = run_case(*case)
        rows.append(row)
        entries = f"{row['table_entries']:.2g}" if row["table_entries"] != "" else ""
        print(f"{row['planner']:<18}{row['teeth']:>3}{row['length']:>6}{row['handle']:>4}{row['slots']:>4}"
              f"{'yes' if row['disk'] else '':>5}"
              f"{row['plan_s']:>9.3f}{row['makespan']!s:>10}{row['simulated']!s:>11}{entries:>10}"
              f"{row['load']:>6}  {row['note'][:70]}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_join.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "bench_join.json").write_text(json.dumps({"loadavg": os.getloadavg(), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
