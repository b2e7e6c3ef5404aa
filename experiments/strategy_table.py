"""The strategy table of Pallez (2019) predicted on the chain model: time and space of five ways to reverse l steps.

The seed talk's table ranks "Store all" ($ time, $$$ space), "Store none" ($$$, $), "No reuse" ($$, $$) and
"Memory reuse" ($, $).  Here each strategy is a schedule, and the simulator gives its time (makespan, in forward
steps: ``uf = 1``, ``ub = 2`` and the storage costs of checkpointing/data/platforms/ram-ssd-pfs.toml) and its space (peak number of
checkpoints per level), for a chain of ``l`` steps and ``M`` memory slots:

* store all: ``x_0 .. x_{l-1}`` in memory (``l`` slots);
* store "none": only ``x_0``, every state recomputed from it (recompute-all, 1 slot);
* no reuse: ``M`` periodic checkpoints written once in the first sweep (:mod:`experiments.no_reuse`);
* memory reuse: Revolve with ``M`` slots (Griewank & Walther 2000);
* H-Revolve: ``M`` memory slots plus the SSD and PFS levels of ram-ssd-pfs (Herrmann & Pallez 2020).

Panel (a) sweeps ``M`` (time against memory), panel (b) is the table at the chosen ``(l, M)``.

Headline: the orderings of the table hold -- time: store all <= memory reuse < no reuse < store none; memory
slots: store none (1) < no reuse = memory reuse (M) < store all (l); H-Revolve no slower than Revolve with the same
memory -- and the no-reuse schedule costs exactly ``l + sum_k p_k (p_k - 1) / 2`` forward steps (segments ``p_k``).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from checkpointing.planners import plan
from checkpointing.platform import Level, Platform, load_platform
from checkpointing.simulator import simulate

from .harness import main_for, plt, save_figure, write_csv
from .no_reuse import no_reuse_schedule

NAME = "strategy_table"
log = logging.getLogger(f"experiments.{NAME}")

HIERARCHY = "ram-ssd-pfs"  # a shipped platform (checkpointing/data/platforms)
STRATEGIES = ("store all", "store none", "no reuse", "memory reuse", "H-Revolve")


def memory_only(slots: int, like: Platform) -> Platform:
    """One level of ``slots`` memory slots with ``like``'s step costs and its level-0 (memory) costs."""
    ram = like.levels[0]
    return Platform((Level(slots, ram.write_cost, ram.read_cost, "ram"),), like.uf, like.ub, f"ram{slots}")


def with_memory(slots: int, like: Platform) -> Platform:
    """``like`` with its level 0 (memory) resized to ``slots`` slots."""
    ram = like.levels[0]
    return Platform((Level(slots, ram.write_cost, ram.read_cost, ram.name),) + like.levels[1:], like.uf, like.ub,
                    f"{like.name}, {ram.name} = {slots}")


def strategy_schedules(steps: int, memory: int, hierarchy: Platform) -> dict[str, tuple[list, Platform]]:
    """The schedule of each strategy of the table and the platform it runs on."""
    if not 1 <= memory <= steps:
        raise ValueError(f"memory = {memory}: must be between 1 and the chain length l = {steps}")
    return {
        "store all": (plan("store-all", steps, memory_only(steps, hierarchy)), memory_only(steps, hierarchy)),
        "store none": (plan("recompute-all", steps, memory_only(1, hierarchy)), memory_only(1, hierarchy)),
        "no reuse": (no_reuse_schedule(steps, memory), memory_only(memory, hierarchy)),
        "memory reuse": (plan("revolve", steps, memory_only(memory, hierarchy)), memory_only(memory, hierarchy)),
        "H-Revolve": (plan("hrevolve", steps, with_memory(memory, hierarchy)), with_memory(memory, hierarchy)),
    }


def no_reuse_forward_steps(steps: int, slots: int) -> int:
    """``l + sum_k p_k (p_k - 1) / 2`` for the segments ``p_k`` between ``floor(k l / s)`` (module docstring)."""
    starts = sorted({k * steps // slots for k in range(min(slots, steps))}) + [steps]
    return steps + sum((b - a) * (b - a - 1) // 2 for a, b in zip(starts, starts[1:]))


def table_rows(steps: int, memory: int, hierarchy: Platform) -> list[dict]:
    rows = []
    for name, (schedule, platform) in strategy_schedules(steps, memory, hierarchy).items():
        report = simulate(schedule, platform, steps)
        rows.append({"strategy": name, "l": steps, "memory": memory, "time": report.makespan,
                     "forward_steps": report.forward_steps, "memory_slots": report.peak[0],
                     "other_slots": sum(report.peak[1:]), "peak_per_level": "/".join(map(str, report.peak)),
                     "platform": platform.name})
    return rows


def sweep_rows(steps: int, hierarchy: Platform, points: int) -> list[dict]:
    """Time against memory slots ``M`` for the strategies that take ``M``."""
    memories = sorted({int(round(m)) for m in np.geomspace(1, steps, points)})
    return [row for m in memories for row in table_rows(steps, m, hierarchy)
            if row["strategy"] in ("no reuse", "memory reuse", "H-Revolve")]


def check(table: list[dict], steps: int, memory: int) -> tuple[bool, dict]:
    by = {r["strategy"]: r for r in table}
    t = {name: by[name]["time"] for name in STRATEGIES}
    s = {name: by[name]["memory_slots"] for name in STRATEGIES}
    facts = {
        "time_order": t["store all"] <= t["memory reuse"] < t["no reuse"] < t["store none"],
        "space_order": s["store none"] == 1 and s["no reuse"] == s["memory reuse"] == memory
        and s["store all"] == steps and 1 < memory < steps,
        "hrevolve_not_slower": t["H-Revolve"] <= t["memory reuse"] and s["H-Revolve"] <= memory,
        "no_reuse_closed_form": by["no reuse"]["forward_steps"] == no_reuse_forward_steps(steps, memory),
    }
    return all(facts.values()), facts


def plot(table, sweep, path: Path) -> Path:
    fig, (ax, tab) = plt.subplots(1, 2, figsize=(13, 4.3), gridspec_kw={"width_ratios": [1.1, 1]})
    by = {r["strategy"]: r for r in table}
    for name, style in (("no reuse", "s-"), ("memory reuse", "o-"), ("H-Revolve", "^-")):
        rows = [r for r in sweep if r["strategy"] == name]
        ax.plot([r["memory"] for r in rows], [r["time"] for r in rows], style, ms=3, label=name)
    ax.plot([by["store all"]["memory_slots"]], [by["store all"]["time"]], "k*", ms=12, label="store all")
    ax.plot([1], [by["store none"]["time"]], "kX", ms=10, label="store none")
    ax.set(xscale="log", yscale="log", xlabel="memory slots M", ylabel="predicted time (units of uf; ub = 2 uf)",
           title=f"(a) time against memory, l = {table[0]['l']} (H-Revolve also uses SSD + PFS)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    tab.axis("off")
    store_all = by["store all"]["time"]
    cells = [[r["strategy"], f"{r['time']:.0f}", f"{r['time'] / store_all:.2f}", str(r["memory_slots"]),
              str(r["other_slots"])] for r in table]
    t = tab.table(cellText=cells, colLabels=["strategy", "time", "time / store all", "memory slots",
                                             "SSD + PFS slots"], loc="center")
    t.auto_set_font_size(False)
    t.set_fontsize(9)
    t.scale(1, 1.6)
    tab.set_title(f"(b) the table at l = {table[0]['l']}, M = {table[0]['memory']}")
    fig.tight_layout()
    return save_figure(fig, path)


def sizes(full: bool) -> dict:
    return {"steps": 1000, "memory": 20, "points": 25} if full else {"steps": 100, "memory": 10, "points": 15}


def run(out: Path, full: bool) -> dict:
    size = sizes(full)
    hierarchy = load_platform(HIERARCHY)
    table = table_rows(size["steps"], size["memory"], hierarchy)
    sweep = sweep_rows(size["steps"], hierarchy, size["points"])
    write_csv(out / "strategy_table.csv", table)
    write_csv(out / "time_vs_memory.csv", sweep)
    plot(table, sweep, out / "strategy_table.png")
    ok, facts = check(table, size["steps"], size["memory"])
    by = {r["strategy"]: r for r in table}
    headline = (f"l = {size['steps']}, M = {size['memory']}: time (memory slots) store all "
                f"{by['store all']['time']:.0f} ({by['store all']['memory_slots']}), memory reuse "
                f"{by['memory reuse']['time']:.0f} ({by['memory reuse']['memory_slots']}), no reuse "
                f"{by['no reuse']['time']:.0f} ({by['no reuse']['memory_slots']}), store none "
                f"{by['store none']['time']:.0f} ({by['store none']['memory_slots']}), H-Revolve "
                f"{by['H-Revolve']['time']:.1f} ({by['H-Revolve']['peak_per_level']} per level); orderings of the "
                f"table {'hold' if ok else 'FAIL: ' + str({k: v for k, v in facts.items() if not v})}")
    return {"headline": headline, "headline_ok": ok, **facts, "table": table,
            "files": ["strategy_table.png", "strategy_table.csv", "time_vs_memory.csv"]}


def main(argv=None) -> int:
    return main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
