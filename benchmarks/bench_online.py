"""Online checkpointing (l unknown during the forward sweep) against the offline optimum.

For one storage level with ``c`` slots (``w = r = 0``, ``uf = 1``, ``ub = 2``) and chain lengths ``l``, the online
checkpointer of ``checkpointing.online`` is fed ``l`` steps one at a time and then reverses the chain; its schedule
is run through the simulator, and its makespan and forward-step count are compared with the offline optimum (the
H-Revolve DP, which is Revolve here).  Each schedule is also checked for validity by the simulator.

Usage:  python benchmarks/bench_online.py [--slots 2 3 5 10 20] [--lengths 10 30 100 300 1000 3000]
Writes benchmarks/results/bench_online.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checkpointing.hrevolve import hrevolve_tables  # noqa: E402
from checkpointing.online import online_schedule  # noqa: E402
from checkpointing.platform import Level, Platform  # noqa: E402
from checkpointing.simulator import simulate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
UF, UB = 1.0, 2.0
COLUMNS = ("slots", "l", "online_makespan", "offline_makespan", "ratio", "online_forward_steps",
           "offline_forward_steps", "online_plan_s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[2, 3, 5, 10, 20])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 30, 100, 300, 1000, 3000])
    args = parser.parse_args(argv)
    rows = []
    for c in args.slots:
        platform = Platform((Level(c, 0.0, 0.0),), uf=UF, ub=UB)
        offline = hrevolve_tables(max(args.lengths), platform)
        for l in args.lengths:
            start = time.perf_counter()
            schedule = online_schedule(l, platform)
            seconds = time.perf_counter() - start
            online = simulate(schedule, platform, l)
            best = simulate(offline.schedule(l), platform, l)
            rows.append({"slots": c, "l": l, "online_makespan": online.makespan, "offline_makespan": best.makespan,
                         "ratio": online.makespan / best.makespan, "online_forward_steps": online.forward_steps,
                         "offline_forward_steps": best.forward_steps, "online_plan_s": seconds})
            r = rows[-1]
            print(f"c={c:>3} l={l:>5}  online {r['online_makespan']:>10g}  offline {r['offline_makespan']:>10g}  "
                  f"ratio {r['ratio']:.3f}  forward steps {r['online_forward_steps']} vs "
                  f"{r['offline_forward_steps']}  ({seconds:.2f} s)", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_online.json").write_text(json.dumps({"meta": {"uf": UF, "ub": UB}, "rows": rows}, indent=2))
    with open(RESULTS / "bench_online.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    worst = max(rows, key=lambda r: r["ratio"])
    print(f"worst ratio {worst['ratio']:.3f} (c = {worst['slots']}, l = {worst['l']}); "
          f"wrote {RESULTS / 'bench_online.csv'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
