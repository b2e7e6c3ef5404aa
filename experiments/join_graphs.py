"""Join graphs: the optimal three-phase schedule against the heuristics, over memory, tooth length and teeth.

An ensemble of ``p`` runs joined by one functional is a join graph (Beaumont, Herrmann, Pallez & Shilova, Phil.
Trans. R. Soc. A 378: 20190049, 2020; our model and planners: ``checkpointing/joingraph.py``,
``checkpointing/join_optimal.py``, ``checkpointing/join_planners.py``, ``docs/join_graphs.md``).  Three sweeps,
each against the optimum (the label DP over all teeth; exact, checked against exhaustive search in the tests):

* memory: 2 teeth of ``l`` steps, no handle, ``c`` slots from ``p`` upwards;
* length: 2 teeth of different lengths ``l`` and ``2 l``, a handle of ``l / 4`` steps, ``c`` fixed;
* teeth: ``p = 1 .. 4`` teeth of ``l`` steps, ``c = 2 p + 2`` slots.

Planners: ``sequential`` (the optimum over schedules that reverse the teeth one after another), and the two
heuristics ``one-after-another`` (only ``x_0`` of each tooth kept forward, Revolve on the slots left) and
``even-split`` (each tooth Revolve in ``c / p`` slots).  Each makespan is the simulator's cost of the planner's
schedule, so ``ratio >= 1`` is a real property (no valid schedule beats the optimum), and the optimum's simulated
cost must equal its DP value.

Headline: no ratio below 1, the optimum's simulation equals its value everywhere, each heuristic is strictly worse
somewhere, and the largest gain of interleaving the teeth (sequential / optimum).
"""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.join_planners import JOIN_PLANNERS, join_plan
from checkpointing.joingraph import Branch, JoinGraph, simulate_join
from checkpointing.platform import Level, Platform

from .harness import main_for, plt, save_figure, write_csv

NAME = "join_graphs"
log = logging.getLogger(f"experiments.{NAME}")
OTHERS = [name for name in JOIN_PLANNERS if name != "optimal"]
TOLERANCE = 1e-9


def sizes(full: bool) -> dict:
    if full:
        return {"length": 200, "memories": list(range(2, 31)), "lengths": [4, 8, 16, 32, 48, 64, 96, 128, 160, 200],
                "length_slots": 8, "teeth_length": 24}
    return {"length": 60, "memories": list(range(2, 17)), "lengths": [4, 8, 16, 24, 32, 48, 64], "length_slots": 6,
            "teeth_length": 12}


def cases(full: bool) -> list[tuple[str, float, JoinGraph, Platform]]:
    """``(sweep, x, graph, platform)`` for the three sweeps (uf = ub = 1, free reads and writes)."""
    size = sizes(full)
    out = []
    for c in size["memories"]:
        out.append(("memory", c, JoinGraph((Branch(size["length"]),) * 2), Platform((Level(c),))))
    for l in size["lengths"]:
        graph = JoinGraph((Branch(l), Branch(2 * l)), Branch(max(1, l // 4), None, 1.0))
        out.append(("length", l, graph, Platform((Level(size["length_slots"]),))))
    for p in range(1, 5):
        out.append(("teeth", p, JoinGraph((Branch(size["teeth_length"]),) * p), Platform((Level(2 * p + 2),))))
    return out


def rows_for(cases_) -> list[dict]:
    """One row per (case, planner): simulated makespan, the optimum, their ratio."""
    rows = []
    for sweep, x, graph, platform in cases_:
        best = join_plan("optimal", graph, platform)
        simulated = simulate_join(best.schedule(), graph, platform, structured=True).makespan
        base = {"sweep": sweep, "x": x, "teeth": graph.p, "lengths": "/".join(map(str, graph.lengths)),
                "handle": graph.handle.length, "slots": platform.capacities[0], "optimum": float(best.value)}
        rows.append({**base, "planner": "optimal", "makespan": simulated, "ratio": simulated / best.value,
                     "forward_checkpoints": best.forward_checkpoints})
        for name in OTHERS:
            try:
                plan = join_plan(name, graph, platform)
                makespan = simulate_join(plan.schedule(), graph, platform, structured=True).makespan
                ckpts = plan.forward_checkpoints
            except ScheduleDoesNotFit:
                makespan, ckpts = math.nan, None
            rows.append({**base, "planner": name, "makespan": makespan, "ratio": makespan / best.value,
                         "forward_checkpoints": ckpts})
    return rows


def check(rows: list[dict]) -> tuple[bool, dict]:
    ran = [r for r in rows if math.isfinite(r["ratio"])]
    below = [r for r in ran if r["ratio"] < 1 - TOLERANCE]
    mismatch = [r for r in ran if r["planner"] == "optimal" and abs(r["ratio"] - 1) > TOLERANCE]
    worst = {name: max((r["ratio"] for r in ran if r["planner"] == name), default=math.nan) for name in OTHERS}
    never = [name for name in ("one-after-another", "even-split") if not worst[name] > 1 + TOLERANCE]
    gaps = [r for r in ran if r["planner"] == "sequential"]
    interleaving = max(gaps, key=lambda r: r["ratio"]) if gaps else None
    ok = bool(ran) and not below and not mismatch and not never
    return ok, {"cases": len(ran), "ratios_below_one": len(below), "optimum_mismatches": len(mismatch),
                "worst_ratio": worst, "heuristics_never_beaten": never,
                "sequential_strictly_worse": int(sum(r["ratio"] > 1 + TOLERANCE for r in gaps)),
                "sequential_cases": len(gaps),
                "largest_interleaving_gain": None if interleaving is None else
                {k: interleaving[k] for k in ("sweep", "x", "lengths", "handle", "slots", "ratio")}}


def plot(rows: list[dict], path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    labels = {"memory": "slots c (2 teeth of %s steps, no handle)", "length": "tooth length l (teeth l and 2l, "
              "handle l/4, %s slots)", "teeth": "number of teeth p (%s steps each, c = 2p + 2)"}
    for ax, sweep in zip(axes, ("memory", "length", "teeth")):
        mine = [r for r in rows if r["sweep"] == sweep]
        detail = {"memory": mine[0]["lengths"].split("/")[0], "length": mine[0]["slots"],
                  "teeth": mine[0]["lengths"].split("/")[0]}[sweep]
        for i, name in enumerate(OTHERS):
            pts = [r for r in mine if r["planner"] == name]
            ax.plot([r["x"] for r in pts], [r["ratio"] for r in pts], marker=".", color=f"C{i}", label=name)
        ax.axhline(1.0, color="k", linestyle="--", label="optimum (label DP)")
        if sweep == "teeth":
            ax.set_xticks(sorted({r["x"] for r in mine}))
        ax.set(xlabel=labels[sweep] % detail, ylabel="makespan / optimum")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Join graphs: heuristics relative to the optimal three-phase schedule")
    fig.tight_layout()
    return save_figure(fig, path)


def run(out: Path, full: bool) -> dict:
    rows = rows_for(cases(full))
    write_csv(out / "join_graphs.csv", rows)
    plot(rows, out / "join_graphs.png")
    ok, facts = check(rows)
    gain = facts["largest_interleaving_gain"]
    worst = ", ".join(f"{name} up to {w:.3f}" for name, w in facts["worst_ratio"].items())
    headline = (f"{facts['cases']} join-graph makespans: {facts['ratios_below_one']} ratios below the optimum, "
                f"optimum simulated = DP value in all but {facts['optimum_mismatches']}; worst ratio {worst}; "
                f"interleaving the teeth beats reversing them one after another in "
                f"{facts['sequential_strictly_worse']} of {facts['sequential_cases']} cases, at most by "
                f"{gain['ratio']:.4f} ({gain['sweep']} sweep, teeth {gain['lengths']}, handle {gain['handle']}, "
                f"c = {gain['slots']})")
    return {"headline": headline, "headline_ok": ok, **facts, "files": ["join_graphs.png", "join_graphs.csv"]}


def main(argv=None) -> int:
    return main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
