"""Run every experiment: ``python -m experiments.all --out DIR [--full] [--only a,b] [--skip c]``.

Each experiment writes into ``DIR/<name>/`` (PNG, CSV, ``summary.json``); this driver adds ``DIR/summary.json`` and
``DIR/summary.csv`` and prints a table with one line per experiment: whether its headline check passed, how long it
took, and its headline.  An experiment that raises is reported as failed and the others still run.  Exit status 0
only if every headline check passed.

The pure-Python experiments (schedules and simulator) come first and take seconds; the ones on the ice model import
Firedrake and take minutes.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import time
import traceback
from pathlib import Path

from .harness import run_one, setup_logging, write_csv

log = logging.getLogger("experiments.all")

PURE = ("revolve_tradeoff", "hrevolve_vs_heuristics", "strategy_table", "join_graphs")
ON_THE_MODEL = ("sensitivity_maps", "picard_adjoint", "strategy_measured", "nonuniform_costs", "twin_inversion",
                "file_inversion", "mismip", "mismip_convergence", "mismip_sensitivity", "mismip_flagship",
                "mismip_online")
EXPERIMENTS = PURE + ON_THE_MODEL


def parse_names(text: str | None, option: str) -> list[str]:
    """A comma-separated list of experiment names, each checked against :data:`EXPERIMENTS`."""
    if not text:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise SystemExit(f"{option} {text!r}: unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    return names


def run_all(out: Path, full: bool, names) -> list[dict]:
    summaries = []
    for name in names:
        start = time.perf_counter()
        try:
            summaries.append(run_one(importlib.import_module(f"experiments.{name}"), out, full))
        except Exception as error:  # an experiment's failure is reported, the others still run
            log.error("%s failed:\n%s", name, traceback.format_exc())
            summaries.append({"name": name, "full": full, "headline_ok": False,
                              "headline": f"FAILED: {type(error).__name__}: {error}",
                              "seconds": round(time.perf_counter() - start, 2)})
    return summaries


def report(summaries: list[dict], out: Path) -> str:
    """Write ``summary.json`` / ``summary.csv`` into ``out`` and return the table as text."""
    rows = [{"experiment": s["name"], "headline_ok": s["headline_ok"], "seconds": s["seconds"],
             "headline": s["headline"]} for s in summaries]
    write_csv(out / "summary.csv", rows)
    (out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    width = max(len(r["experiment"]) for r in rows)
    lines = [f"{'experiment':<{width}}  ok    seconds  headline"]
    lines += [f"{r['experiment']:<{width}}  {'yes' if r['headline_ok'] else 'NO ':<4} {r['seconds']:8.1f}  "
              f"{r['headline']}" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per experiment)")
    parser.add_argument("--full", action="store_true", help="full-size versions (slower)")
    parser.add_argument("--only", help=f"comma-separated experiments to run (default: all of {list(EXPERIMENTS)})")
    parser.add_argument("--skip", help="comma-separated experiments to leave out")
    args = parser.parse_args(argv)
    only, skip = parse_names(args.only, "--only"), parse_names(args.skip, "--skip")
    names = [n for n in (only or EXPERIMENTS) if n not in skip]
    setup_logging()
    if any(n in ON_THE_MODEL for n in names):
        from icesheet.cli import import_firedrake

        import_firedrake()  # before the experiments import it, so that PETSc does not see our arguments
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = run_all(args.out, args.full, names)
    print(report(summaries, args.out), flush=True)
    return 0 if all(s["headline_ok"] for s in summaries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
