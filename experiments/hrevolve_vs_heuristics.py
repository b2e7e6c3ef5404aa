"""H-Revolve against the heuristics on hierarchical platforms: relative makespan heuristic / optimum against l.

The analogue of Fig. 5 of Herrmann & Pallez (ACM TOMS 46(2), 2020), "relative performance of the heuristics
compared to the optimal solution on hierarchical platforms for large graph sizes", on the platforms shipped in
checkpointing/data/platforms/.  The optimum is the H-Revolve dynamic programme ``Opt_{K-1}(l, c_{K-1})`` (one table
up to the largest ``l`` gives the value for every shorter chain); each heuristic's makespan is the simulator's cost of the
schedule its planner emits (an independent check of validity and cost), so ``ratio >= 1`` is a real property: no
valid schedule beats the optimum.  H-Revolve's own schedules are simulated too and must cost exactly the optimum.

Heuristics are every planner of :data:`checkpointing.planners.PLANNERS` except the optima (H-Revolve, and its
per-step-cost version "nonuniform", which with uniform costs is the same DP), the two baselines (store-all,
recompute-all) and planners that need extra inputs, plus one defined here:
``disk-revolve-fastest-slowest``, Disk-Revolve on the fastest and the slowest level only (the intermediate levels
ignored), for platforms with three or more levels.  A heuristic that does not fit at some ``l`` (e.g. Disk-Revolve
when the bounded second level overflows) is left out there.  On a two-level platform ``disk-revolve`` is not a
heuristic but the optimum wherever it fits (Aupy, Herrmann, Hovland & Robert 2016), so it is not compared there.

Headline: every ratio is >= 1, H-Revolve's simulated makespan equals the DP value, and for each heuristic there is
an ``l`` where H-Revolve is strictly better, or where the heuristic has no schedule at all (Disk-Revolve on the two
fastest levels is optimal as long as the second level holds its checkpoints, and fails beyond).
"""
from __future__ import annotations

import inspect
import logging
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.hrevolve import hrevolve_schedule, hrevolve_tables
from checkpointing.planners import PLANNERS, plan
from checkpointing.platform import Platform, shipped_platforms
from checkpointing.simulator import simulate

from .harness import main_for, plt, save_figure, write_csv

NAME = "hrevolve_vs_heuristics"
log = logging.getLogger(f"experiments.{NAME}")

NOT_HEURISTICS = {"hrevolve", "nonuniform", "store-all", "recompute-all"}  # optima and baselines
TOLERANCE = 1e-9


def disk_revolve_fastest_slowest(steps: int, platform: Platform) -> list:
    """The optimal two-level schedule for levels ``0`` and ``K-1`` of ``platform`` alone (Disk-Revolve when level
    ``K-1`` is unbounded), its level 1 renamed ``K-1``: a valid schedule on the whole platform."""
    last = platform.n_levels - 1
    pair = Platform((platform.levels[0], platform.levels[last]), platform.uf, platform.ub)
    return [replace(a, level=last) if getattr(a, "level", 0) == 1 else a for a in hrevolve_schedule(steps, pair)]


EXTRA_HEURISTICS = {"disk-revolve-fastest-slowest": disk_revolve_fastest_slowest}


def applies(name: str, platform: Platform) -> bool:
    """Whether ``name`` is a heuristic (not the optimum itself) on ``platform``."""
    if name in ("disk-revolve", "disk-revolve-fastest-slowest"):
        return platform.n_levels >= 3
    return True


def make_schedule(name: str, steps: int, platform: Platform) -> list:
    if name in EXTRA_HEURISTICS:
        return EXTRA_HEURISTICS[name](steps, platform)
    return plan(name, steps, platform)


def heuristic_names() -> list[str]:
    """Planners that take only ``(steps, platform)`` and are neither H-Revolve nor a baseline."""
    names = []
    for name, planner in PLANNERS.items():
        required = [p for p in list(inspect.signature(planner).parameters.values())[2:]
                    if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if name not in NOT_HEURISTICS and not required:
            names.append(name)
    return names + list(EXTRA_HEURISTICS)


def chain_lengths(max_length: int, points: int) -> list[int]:
    """About ``points`` log-spaced chain lengths from 1 to ``max_length``."""
    return sorted({int(round(x)) for x in np.geomspace(1, max_length, points)})


def sizes(full: bool) -> dict:
    return {"max_length": 10000, "points": 40} if full else {"max_length": 2000, "points": 30}


def platform_rows(platform: Platform, lengths: list[int], heuristics: list[str]) -> list[dict]:
    """One row per (l, heuristic) with the heuristic's simulated makespan, the optimum and their ratio."""
    tables = hrevolve_tables(max(lengths), platform)
    rows = []
    for l in tqdm(lengths, desc=platform.name, leave=False):
        optimum = tables.value(l)
        simulated_optimum = simulate(tables.schedule(l), platform, l).makespan
        rows.append({"platform": platform.name, "l": l, "planner": "hrevolve", "makespan": simulated_optimum,
                     "optimum": optimum, "ratio": simulated_optimum / optimum})
        for name in heuristics:
            if not applies(name, platform):
                continue
            try:
                makespan = simulate(make_schedule(name, l, platform), platform, l).makespan
            except ScheduleDoesNotFit:
                makespan = math.nan
            rows.append({"platform": platform.name, "l": l, "planner": name, "makespan": makespan,
                         "optimum": optimum, "ratio": makespan / optimum})
    return rows


def check(rows: list[dict], heuristics: list[str]) -> tuple[bool, dict]:
    """Ratios >= 1, H-Revolve's simulated makespan = the DP value, and each heuristic either strictly worse than
    H-Revolve at some ``l`` or unable to fit the platform at some ``l`` (where H-Revolve always has a schedule)."""
    ran = [r for r in rows if math.isfinite(r["ratio"])]
    below_one = [r for r in ran if r["ratio"] < 1 - TOLERANCE]
    optimum_mismatch = [r for r in ran if r["planner"] == "hrevolve" and abs(r["ratio"] - 1) > TOLERANCE]
    worst, first_misfit = {}, {}
    for name in heuristics:
        ratios = [r["ratio"] for r in ran if r["planner"] == name]
        worst[name] = max(ratios) if ratios else math.nan
        misfits = [r for r in rows if r["planner"] == name and not math.isfinite(r["ratio"])]
        first_misfit[name] = {p: min(r["l"] for r in misfits if r["platform"] == p)
                              for p in sorted({r["platform"] for r in misfits})}
    never_beaten = [name for name in heuristics if not worst[name] > 1 + TOLERANCE and not first_misfit[name]]
    ok = bool(heuristics) and not below_one and not optimum_mismatch and not never_beaten
    return ok, {"cases": len(ran), "ratios_below_one": len(below_one), "hrevolve_mismatches": len(optimum_mismatch),
                "worst_ratio": worst, "first_l_not_fitting": first_misfit, "heuristics_never_beaten": never_beaten}


def plot(rows: list[dict], platforms: list[str], path: Path) -> Path:
    cols = 2
    nrows = math.ceil(len(platforms) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(11, 3.6 * nrows), squeeze=False)
    planners = list(dict.fromkeys(r["planner"] for r in rows))
    colours = {name: f"C{i}" for i, name in enumerate(planners)}
    for ax, name in zip(axes.flat, platforms):
        for planner in planners:
            mine = [r for r in rows if r["platform"] == name and r["planner"] == planner]
            if not mine:
                continue
            optimum = planner == "hrevolve"
            ax.plot([r["l"] for r in mine], [r["ratio"] for r in mine], linestyle="--" if optimum else "-",
                    marker=None if optimum else ".", ms=4, color="k" if optimum else colours[planner],
                    label="H-Revolve (optimum)" if optimum else planner)
        ax.set(xscale="log", title=name, xlabel="chain length l", ylabel="makespan / optimum")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(platforms):]:
        ax.axis("off")
    for ax in list(axes.flat)[:len(platforms)]:
        ax.legend(fontsize=7)
    fig.suptitle("Heuristics relative to H-Revolve (cf. Herrmann & Pallez 2020, Fig. 5)")
    fig.tight_layout()
    return save_figure(fig, path)


def run(out: Path, full: bool, platform_files: list[Path] | None = None) -> dict:
    size = sizes(full)
    lengths = chain_lengths(size["max_length"], size["points"])
    files = list(shipped_platforms().values()) if platform_files is None else platform_files
    platforms = [Platform.from_toml(f) for f in files]
    if not platforms:
        raise FileNotFoundError("no platform files (*.toml) given, and none shipped in checkpointing/data/platforms")
    heuristics = heuristic_names()
    log.info("heuristics: %s; platforms: %s; l up to %d", heuristics, [p.name for p in platforms], max(lengths))
    rows = [row for p in platforms for row in platform_rows(p, lengths, heuristics)]
    write_csv(out / "relative_makespan.csv", rows)
    plot(rows, [p.name for p in platforms], out / "hrevolve_vs_heuristics.png")
    ok, facts = check(rows, heuristics)
    worst = ", ".join(f"{name} up to {w:.3f}" + (f" (no schedule from l = {facts['first_l_not_fitting'][name]})"
                                                  if facts["first_l_not_fitting"][name] else "")
                      for name, w in facts["worst_ratio"].items())
    headline = (f"On {len(platforms)} platforms and l up to {max(lengths)}, {facts['cases']} makespans: "
                f"{facts['ratios_below_one']} heuristic ratios below 1, H-Revolve simulated = DP optimum in all but "
                f"{facts['hrevolve_mismatches']}; worst ratio per heuristic: {worst}"
                + (f"; never beaten: {facts['heuristics_never_beaten']}" if facts["heuristics_never_beaten"] else ""))
    return {"headline": headline, "headline_ok": ok, "platforms": [p.name for p in platforms],
            "heuristics": heuristics, "max_length": max(lengths), **facts,
            "files": ["hrevolve_vs_heuristics.png", "relative_makespan.csv"]}


def main(argv=None) -> int:
    return main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
