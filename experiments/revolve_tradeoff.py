"""Revolve's time-memory trade-off: forward recomputations against memory slots, and steps reversible in memory M.

Griewank & Walther (ACM TOMS 26(1), 2000): with ``s`` slots (the one holding ``x_0`` included) a chain of ``L``
steps is reversed with ``t(L, s) = r L - C(s + r, s + 1)`` extra forward steps, ``r = min{r : C(s + r, s) >= L}``,
and at most ``C(s + r, s)`` steps can be reversed when no step may be recomputed more than ``r`` times.  Our chain
of length ``l`` is their chain of ``L = l + 1`` steps (checkpointing/revolve.py), so the simulator should count
``t(l + 1, s)`` forward steps for the planned schedule.

The seed talk (Pallez 2019) states the consequence: with memory ``M``, store-all reverses ``O(M)`` steps in time
``O(M)``, Revolve ``O(e^M)`` steps in time ``O(M e^M)``.  Panel (b) draws ``C(M + r, M) - 1`` (our ``l``) against
``M`` for ``r = 1..4`` and ``r = M``; ``r = 1`` *is* store-all (``l = M``).  Panel (c) shows the time per step,
forward steps / ``l``, climbing the staircase ``r(l)``.

Headline checks: (a) every simulated count equals the closed form (computed here from ``math.comb``, not from the
planner's module); (b) at ``l = C(M + r, M) - 1`` the schedule keeps at most ``M`` checkpoints and recomputes no step
more than ``r`` times, and one step more (``l + 1``) some step runs ``r + 1`` times, as G&W's bound requires.
"""
from __future__ import annotations

import logging
import sys
from math import comb
from pathlib import Path

import numpy as np
from tqdm import tqdm

from checkpointing.actions import Advance
from checkpointing.planners import plan
from checkpointing.platform import Level, Platform
from checkpointing.simulator import simulate

from .harness import main_for, plt, save_figure, write_csv

NAME = "revolve_tradeoff"
log = logging.getLogger(f"experiments.{NAME}")


def closed_form_forward_steps(l: int, s: int) -> int:
    """``t(L, s) = r L - C(s + r, s + 1)`` with ``L = l + 1`` and ``r = min{r : C(s + r, s) >= L}``
    (Griewank & Walther 2000, Proposition 1); 0 for ``l = 0``."""
    if l == 0:
        return 0
    r = repetition_number(l, s)
    return r * (l + 1) - comb(s + r, s + 1)


def repetition_number(l: int, s: int) -> int:
    """``r = min{r : C(s + r, s) >= l + 1}``: the repetition number of our chain of length ``l``."""
    r = 0
    while comb(s + r, s) < l + 1:
        r += 1
    return r


def one_level(slots: int) -> Platform:
    """Memory only, free reads and writes, ``uf = 1``, ``ub = 0``: the makespan counts forward steps."""
    return Platform((Level(slots, name="ram"),), uf=1.0, ub=0.0, name=f"ram{slots}")


def repetitions(schedule, l: int) -> np.ndarray:
    """How many times each forward step ``F_i`` (``i < l``) runs in ``schedule`` (``Advance`` actions only)."""
    runs = np.zeros(l + 1, dtype=np.int64)
    for action in schedule:
        if type(action) is Advance:
            runs[action.start] += 1
            runs[action.end] -= 1
    return np.cumsum(runs)[:l]


def sizes(full: bool) -> dict:
    """Default: seconds; full: up to l = 10000 in panel (a) and M = 30 in panel (b)."""
    if full:
        return {"lengths": [10, 30, 100, 300, 1000, 3000, 10000], "max_slots": 100, "max_memory": 30,
                "simulate_up_to": 60000, "staircase_memory": [2, 4, 8, 16], "staircase_length": 3000}
    return {"lengths": [10, 30, 100, 300, 1000], "max_slots": 40, "max_memory": 20,
            "simulate_up_to": 12000, "staircase_memory": [2, 4, 8], "staircase_length": 600}


def tradeoff_rows(lengths, max_slots) -> list[dict]:
    """Panel (a): simulated forward steps of Revolve against the closed form, for ``s = 1 .. min(l, max_slots)``."""
    cases = [(l, s) for l in lengths for s in range(1, min(l, max_slots) + 1)]
    rows = []
    for l, s in tqdm(cases, desc="revolve counts", leave=False):
        report = simulate(plan("revolve", l, one_level(s)), one_level(s), l)
        rows.append({"l": l, "slots": s, "simulated_forward_steps": report.forward_steps,
                     "closed_form_forward_steps": closed_form_forward_steps(l, s), "peak_slots": report.peak[0]})
    return rows


def scaling_rows(max_memory, simulate_up_to) -> list[dict]:
    """Panel (b): ``l = C(M + r, M) - 1`` steps reversible with ``M`` slots and ``r`` repetitions; simulated (peak,
    worst repetition count at ``l`` and at ``l + 1``) where ``l + 1 <= simulate_up_to``."""
    rows = []
    for M in tqdm(range(1, max_memory + 1), desc="scaling", leave=False):
        for r in sorted({1, 2, 3, 4, M}):
            l = comb(M + r, M) - 1
            row = {"memory": M, "r": r, "reversible_steps": l, "store_all_steps": M, "simulated": False,
                   "peak_slots": "", "max_repetitions": "", "max_repetitions_one_more": "",
                   "forward_steps_per_step": ""}
            if l + 1 <= simulate_up_to:
                schedule = plan("revolve", l, one_level(M))
                report = simulate(schedule, one_level(M), l)
                more = plan("revolve", l + 1, one_level(M))
                row.update(simulated=True, peak_slots=report.peak[0],
                           max_repetitions=int(repetitions(schedule, l).max()) if l else 0,
                           max_repetitions_one_more=int(repetitions(more, l + 1).max()),
                           forward_steps_per_step=report.forward_steps / l if l else 0.0)
            rows.append(row)
    return rows


def staircase_rows(memories, max_length) -> list[dict]:
    """Panel (c): forward steps per step of Revolve (simulated) against ``l`` for a few memory sizes."""
    rows = []
    for M in memories:
        for l in range(1, max_length + 1):
            report = simulate(plan("revolve", l, one_level(M)), one_level(M), l)
            rows.append({"memory": M, "l": l, "forward_steps_per_step": report.forward_steps / l,
                         "closed_form_per_step": closed_form_forward_steps(l, M) / l,
                         "repetition_number": repetition_number(l, M)})
    return rows


def check(tradeoff, scaling, staircase) -> tuple[bool, dict]:
    """The headline properties, with the numbers that back them."""
    mismatches = [r for r in tradeoff if r["simulated_forward_steps"] != r["closed_form_forward_steps"]]
    mismatches += [r for r in staircase if r["forward_steps_per_step"] != r["closed_form_per_step"]
                   or r["forward_steps_per_step"] > r["repetition_number"]]
    over_memory = [r for r in tradeoff if r["peak_slots"] > r["slots"]]
    simulated = [r for r in scaling if r["simulated"]]
    bad_scaling = [r for r in simulated if r["peak_slots"] > r["memory"] or r["max_repetitions"] > r["r"]
                   or r["max_repetitions_one_more"] != r["r"] + 1]
    facts = {"count_cases": len(tradeoff) + len(staircase), "count_mismatches": len(mismatches),
             "over_memory": len(over_memory), "scaling_cases_simulated": len(simulated),
             "scaling_failures": len(bad_scaling)}
    ok = not mismatches and not over_memory and not bad_scaling and len(simulated) > 0
    return ok, facts


def plot(tradeoff, scaling, staircase, path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    ax = axes[0]
    for l in sorted({r["l"] for r in tradeoff}):
        rows = [r for r in tradeoff if r["l"] == l]
        s = [r["slots"] for r in rows]
        line, = ax.plot(s, [r["closed_form_forward_steps"] for r in rows], "-", lw=1)
        ax.plot(s, [r["simulated_forward_steps"] for r in rows], "o", ms=3, color=line.get_color(), label=f"l = {l}")
    ax.set(xscale="log", yscale="log", xlabel="memory slots s", ylabel="forward steps (incl. first sweep)",
           title="(a) Revolve: simulated (dots) vs closed form (lines)")
    ax.legend(fontsize=8)

    ax = axes[1]
    memories = sorted({r["memory"] for r in scaling})
    ax.plot(memories, memories, "k--", label="store all: l = M")
    for r in (2, 3, 4):
        ax.plot(memories, [comb(M + r, M) - 1 for M in memories], "-", label=f"Revolve, r = {r}")
    ax.plot(memories, [comb(2 * M, M) - 1 for M in memories], "-", label="Revolve, r = M")
    sim = [row for row in scaling if row["simulated"]]
    ax.plot([row["memory"] for row in sim], [row["reversible_steps"] for row in sim], "k.", ms=4,
            label="simulated: peak <= M, repetitions <= r")
    ax.set(yscale="log", xlabel="memory M (slots)", ylabel="steps l reversible",
           title="(b) steps reversible with M slots, each step run <= r times")
    ax.legend(fontsize=8)

    ax = axes[2]
    for M in sorted({r["memory"] for r in staircase}):
        rows = [r for r in staircase if r["memory"] == M]
        line, = ax.plot([r["l"] for r in rows], [r["forward_steps_per_step"] for r in rows], "-", label=f"M = {M}")
        ax.plot([r["l"] for r in rows], [r["repetition_number"] for r in rows], "--", lw=0.8,
                color=line.get_color())
    ax.set(xscale="log", yscale="log", xlabel="chain length l", ylabel="forward steps / l",
           title="(c) time per step (solid) below r(l) (dashed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def run(out: Path, full: bool) -> dict:
    size = sizes(full)
    tradeoff = tradeoff_rows(size["lengths"], size["max_slots"])
    scaling = scaling_rows(size["max_memory"], size["simulate_up_to"])
    staircase = staircase_rows(size["staircase_memory"], size["staircase_length"])
    write_csv(out / "revolve_counts.csv", tradeoff)
    write_csv(out / "reversible_steps.csv", scaling)
    write_csv(out / "forward_steps_per_step.csv", staircase)
    plot(tradeoff, scaling, staircase, out / "revolve_tradeoff.png")
    ok, facts = check(tradeoff, scaling, staircase)
    M = min(10, size["max_memory"])
    reach = {r: comb(M + r, M) - 1 for r in (1, 2, 3, 4)}
    headline = (f"Revolve's simulated forward-step counts equal the closed form t(l+1, s) in "
                f"{facts['count_cases'] - facts['count_mismatches']}/{facts['count_cases']} cases; with M = {M} slots "
                f"it reverses l = {reach[1]}, {reach[2]}, {reach[3]}, {reach[4]} steps for r = 1..4 repetitions "
                f"(store all: {M}); bound checked by simulation in "
                f"{facts['scaling_cases_simulated'] - facts['scaling_failures']}/{facts['scaling_cases_simulated']} "
                "(M, r) cases (peak <= M, repetitions <= r, and r + 1 at l + 1)")
    return {"headline": headline, "headline_ok": ok, **facts, "reversible_with_M10": reach,
            "files": ["revolve_tradeoff.png", "revolve_counts.csv", "reversible_steps.csv",
                      "forward_steps_per_step.csv"]}


def main(argv=None) -> int:
    return main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
