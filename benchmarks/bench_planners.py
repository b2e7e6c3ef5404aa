"""Time and memory to plan optimal multilevel schedules: our H-Revolve against checkpoint_schedules' HRevolve.

For each platform and chain length ``l`` one child process (``multiprocessing``, fork) builds the H-Revolve tables
and the schedule, and reports the wall time and its peak resident memory above the child's start (``ru_maxrss``);
our table memory is also given exactly (``20 bytes`` per table entry, see ``checkpointing.hrevolve``).  On the
two-level platforms another child times checkpoint_schedules 1.0.4 ``HRevolve(l + 1, ram, disk, uf, ub, wd, rd)``
(its ``max_n`` counts one more step than our ``l``; its table needs an integer disk capacity, so an unbounded disk is
given ``l`` slots) until its schedule iterator is exhausted, and, when that took under ``--peer-makespan-limit``
seconds, its makespan (``hrevolve(...).makespan``, to compare with ours + ``(l + 1) uf``; docs/checkpointing.md, "Makespan conventions").
A peer run longer than ``--peer-timeout`` seconds is stopped and reported as a timeout, so its ratio is a lower
bound.  Timings depend on the machine's load; the load average is recorded.

A second table is the comparison of Herrmann & Pallez (2020, section 6): makespan(heuristic) / optimum against
``l`` on the platforms, for every planner of ``checkpointing.planners`` but "nonuniform" (each schedule run through
the simulator; a planner that does not fit the platform is left blank).

Usage:  python benchmarks/bench_planners.py [--lengths 100 1000 10000] [--peer-timeout 300] [--quick]
            [--ratios-only]
Writes benchmarks/results/bench_planners.{csv,json} and benchmarks/results/bench_heuristics.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checkpointing.hrevolve import hrevolve_tables  # noqa: E402
from checkpointing.memory import peak_rss_mb  # noqa: E402
from checkpointing.planners import PLANNERS, ScheduleDoesNotFit, plan  # noqa: E402
from checkpointing.platform import Platform  # noqa: E402
from checkpointing.simulator import simulate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
UF, UB = 1.0, 2.0
#: name -> platform spec "c:w:r,..." (fastest level first); uf = 1, ub = 2 (uf != ub on purpose)
PLATFORMS = {
    "ram5-disk20": "5:0:0,20:3:3",
    "ram10-disk_inf": "10:0:0,inf:3:3",
    "ram5-ssd20-disk_inf": "5:0:0,20:1:1,inf:5:5",
    "ram10-ssd100-disk_inf": "10:0:0,100:1:1,inf:5:5",
}
COLUMNS = ("platform", "levels", "l", "ours_s", "ours_schedule_s", "ours_table_mb", "ours_peak_rss_mb",
           "ours_makespan", "ours_makespan_peer_convention", "peer_s", "peer_peak_rss_mb", "peer_status", "peer_makespan", "speedup")


def _ours(spec: str, l: int) -> dict:
    platform = Platform.from_spec(spec, UF, UB)
    base = peak_rss_mb()
    start = time.perf_counter()
    tables = hrevolve_tables(l, platform)
    built = time.perf_counter()
    schedule = tables.schedule()
    done = time.perf_counter()
    entries = sum(t.opt.size + t.optbar.size for t in tables.levels)
    return {"ours_s": done - start, "ours_schedule_s": done - built, "ours_table_mb": entries * 10 / 2**20,
            "ours_peak_rss_mb": peak_rss_mb() - base, "ours_makespan": tables.value(),
            "ours_makespan_peer_convention": tables.value() + (l + 1) * UF, "actions": len(schedule)}


def _peer(spec: str, l: int, makespan_limit: float) -> dict:
    from checkpoint_schedules import HRevolve
    from checkpoint_schedules.hrevolve_sequences.hrevolve import hrevolve

    platform = Platform.from_spec(spec, UF, UB)
    ram, disk = platform.levels
    disk_slots = int(min(disk.capacity, l))
    base = peak_rss_mb()
    start = time.perf_counter()
    count = sum(1 for _ in HRevolve(l + 1, ram.capacity, disk_slots, uf=UF, ub=UB, wd=disk.write_cost,
                                    rd=disk.read_cost))
    seconds = time.perf_counter() - start
    out = {"peer_s": seconds, "peer_peak_rss_mb": peak_rss_mb() - base, "peer_actions": count}
    if seconds < makespan_limit:
        seq = hrevolve(l, (ram.capacity, disk_slots), [0, disk.write_cost], [0, disk.read_cost], UF, UB)
        out["peer_makespan"] = seq.makespan
    return out


def _child(conn, fn, args):
    try:
        conn.send(fn(*args))
    except Exception as exc:  # reported in the table, the other cases still run
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    conn.close()


def run_isolated(fn, args, timeout: float) -> dict | None:
    """Run ``fn(*args)`` in a forked child; ``None`` if it exceeds ``timeout`` seconds (the child is stopped)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args))
    proc.start()
    child.close()
    result = parent.recv() if parent.poll(timeout) else None
    if result is None:
        proc.terminate()
    proc.join()
    return result


RATIO_LENGTHS = (10, 30, 100, 300, 1000)
#: "nonuniform" is left out: under uniform costs it is H-Revolve (tested) and it costs O(l^3) time, O(l^2) memory
RATIO_PLANNERS = tuple(p for p in PLANNERS if p != "nonuniform")


def heuristic_ratios() -> list[dict]:
    """makespan(planner) / optimum for every planner, platform and l in RATIO_LENGTHS."""
    rows = []
    for name, spec in PLATFORMS.items():
        platform = Platform.from_spec(spec, UF, UB)
        tables = hrevolve_tables(max(RATIO_LENGTHS), platform)
        for l in RATIO_LENGTHS:
            row = {"platform": name, "l": l, "optimum": tables.value(l)}
            for planner in RATIO_PLANNERS:
                try:
                    makespan = simulate(plan(planner, l, platform), platform, l).makespan
                except ScheduleDoesNotFit:
                    continue
                row[planner] = makespan / row["optimum"]
            rows.append(row)
            print(f"{name:>22} l={l:>5} " + " ".join(f"{p} {row[p]:.3f}" for p in RATIO_PLANNERS if p in row), flush=True)
    return rows


def _write(stem: str, rows: list[dict], columns, meta: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    with open(RESULTS / f"{stem}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {RESULTS / stem}.csv and .json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--peer-timeout", type=float, default=300.0)
    parser.add_argument("--peer-makespan-limit", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="l in {100, 1000}, peer timeout 60 s")
    parser.add_argument("--ratios-only", action="store_true", help="only the heuristics / optimum table")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.peer_timeout = [100, 1000], 60.0
    meta = {"uf": UF, "ub": UB, "platforms": PLATFORMS, "cpus": os.cpu_count(), "python": sys.version.split()[0]}

    _write("bench_heuristics", heuristic_ratios(), ("platform", "l", "optimum", *RATIO_PLANNERS), meta)
    if args.ratios_only:
        return 0
    rows = []
    for name, spec in PLATFORMS.items():
        levels = spec.count(",") + 1
        for l in args.lengths:
            row = {"platform": name, "levels": levels, "l": l}
            row.update(run_isolated(_ours, (spec, l), 3600.0) or {"error": "timeout"})
            if levels == 2:
                peer = run_isolated(_peer, (spec, l, args.peer_makespan_limit), args.peer_timeout)
                if peer is None:
                    row.update(peer_status=f"timeout > {args.peer_timeout:g} s", peer_s=args.peer_timeout)
                else:
                    row.update(peer, peer_status=peer.get("error", "ok"))
                if "ours_s" in row and "peer_s" in row:
                    ratio = row["peer_s"] / row["ours_s"]
                    row["speedup"] = f"> {ratio:.0f}" if peer is None else f"{ratio:.0f}"
            rows.append(row)
            print(_format(row), flush=True)

    meta.update(load_average=os.getloadavg(), peer_timeout_s=args.peer_timeout)
    _write("bench_planners", rows, COLUMNS, meta)
    print(f"load average {meta['load_average']}")
    return 0


def _format(row: dict) -> str:
    def get(key, fmt):
        value = row.get(key)
        return "-" if value is None else fmt.format(value) if not isinstance(value, str) else value

    return (f"{row['platform']:>22} l={row['l']:>6}  ours {get('ours_s', '{:8.3f}')} s "
            f"(tables {get('ours_table_mb', '{:.1f}')} MB, rss +{get('ours_peak_rss_mb', '{:.0f}')} MB, "
            f"makespan {get('ours_makespan', '{:g}')}, +(l+1)uf {get('ours_makespan_peer_convention', '{:g}')})  peer {get('peer_s', '{:8.2f}')} s "
            f"[{get('peer_status', '{}')}] (rss +{get('peer_peak_rss_mb', '{:.0f}')} MB, "
            f"makespan {get('peer_makespan', '{:g}')})  speedup {get('speedup', '{}')}")


if __name__ == "__main__":
    sys.exit(main())
