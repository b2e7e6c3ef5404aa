"""Non-uniform step costs: the uniform-cost optimum against the optimum for the measured per-step costs.

The ice model's steps do not cost the same: the number of Picard iterations of a step depends on how far the
velocity moves during it, so with growing time steps (adaptive stepping after a transient: ``dt_i`` doubling from
1 to 32 years) later steps cost more.  The per-step costs ``uf_i`` (forward) and ``ub_i`` (backward) are calibrated
on this machine (checkpointing/adjoint/calibration.py, CPU time); with ``M`` memory slots (free reads and writes)

* the uniform optimum is Revolve, which minimises the number of forward steps (Griewank & Walther 2000) and is what
  H-Revolve plans on the platform with the mean costs;
* the non-uniform optimum is the interval DP of checkpointing/nonuniform.py for the costs ``uf_i``, ``ub_i``
  (it recomputes expensive steps less often, cheap ones more).

Both are predicted by the simulator with the per-step costs and then measured through the checkpoint manager
(CPU time, the best of ``repeats`` runs).  Headline: the non-uniform schedule is predicted no slower than the
uniform one (a property of the optimum), and both measured times are within 25 % of their predictions.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from .harness import main_for, plt, save_figure, write_csv

NAME = "nonuniform_costs"
log = logging.getLogger(f"experiments.{NAME}")

TIME_TOLERANCE = 0.25


def sizes(full: bool) -> dict:
    if full:
        return {"cell_size": 10000.0, "timesteps": [2.0 ** (k // 2) for k in range(14)], "memory": 3, "repeats": 3}
    return {"cell_size": 20000.0, "timesteps": [2.0 ** (k // 2) for k in range(12)], "memory": 2, "repeats": 2}


def measure(loop, schedule, platform, repeats: int) -> tuple[float, object]:
    """The smallest CPU time of ``repeats`` runs of ``schedule`` through the manager, and the last result."""
    from checkpointing.adjoint import gradient

    results = [gradient(loop, schedule, platform) for _ in range(repeats)]
    return min(r.cpu_time for r in results), results[-1]


def run(out: Path, full: bool) -> dict:
    from checkpointing.adjoint import RamTier
    from checkpointing.adjoint.calibration import calibrate
    from checkpointing.planners import plan
    from checkpointing.platform import Level, Platform
    from checkpointing.simulator import simulate
    from icesheet.controls import time_loop
    from icesheet.functionals import build_functional

    from .ice_problem import IceProblem, build_problem

    size = sizes(full)
    steps = len(size["timesteps"])
    model = build_problem(IceProblem(cell_size=size["cell_size"], steps=steps))
    loop = time_loop(model, build_functional(model, "vaf", steps), size["timesteps"], controls=("friction",))
    calibration = calibrate(loop, [RamTier(size["memory"])], clock=time.process_time)
    uf, ub = np.array(calibration.forward_costs), np.array(calibration.backward_costs)
    platform = Platform((Level(size["memory"], name="ram"),), uf=float(uf.mean()), ub=float(ub.mean()), name="ram")
    schedules = {"uniform optimum (Revolve)": plan("revolve", steps, platform),
                 "non-uniform optimum": plan("nonuniform", steps, platform, forward_costs=uf, backward_costs=ub)}
    rows = []
    for name, schedule in schedules.items():
        predicted = simulate(schedule, platform, steps, forward_costs=uf, backward_costs=ub)
        seconds, result = measure(loop, schedule, platform, size["repeats"])
        rows.append({"schedule": name, "predicted_s": predicted.makespan, "measured_s": seconds,
                     "ratio": seconds / predicted.makespan, "forward_steps": predicted.forward_steps,
                     "J": result.value})
        log.info("%s: predicted %.2f s, measured %.2f s, %d forward steps", name, predicted.makespan, seconds,
                 predicted.forward_steps)
    write_csv(out / "nonuniform_costs.csv", rows)
    write_csv(out / "step_costs.csv", [{"step": i, "dt": dt, "uf": uf[i], "ub": ub[i]}
                                       for i, dt in enumerate(size["timesteps"])])
    plot(size["timesteps"], uf, ub, rows, schedules, out / "nonuniform_costs.png")
    uniform, nonuniform = rows
    facts = {"nonuniform_not_slower_predicted": nonuniform["predicted_s"] <= uniform["predicted_s"] + 1e-12,
             "times_within_tolerance": all(abs(r["ratio"] - 1) <= TIME_TOLERANCE for r in rows)}
    gain_predicted = 1 - nonuniform["predicted_s"] / uniform["predicted_s"]
    gain_measured = 1 - nonuniform["measured_s"] / uniform["measured_s"]
    headline = (f"l = {steps} steps (dt 1..{max(size['timesteps']):g} yr, step costs {uf.min():.2f}-{uf.max():.2f} s "
                f"forward), M = {size['memory']}: non-uniform optimum {nonuniform['predicted_s']:.1f} s predicted / "
                f"{nonuniform['measured_s']:.1f} s measured vs uniform optimum {uniform['predicted_s']:.1f} / "
                f"{uniform['measured_s']:.1f} s (gain {100 * gain_predicted:.1f} % predicted, "
                f"{100 * gain_measured:.1f} % measured)"
                + ("" if all(facts.values()) else f"; FAILED: {[k for k, v in facts.items() if not v]}"))
    return {"headline": headline, "headline_ok": all(facts.values()), **facts, "rows": rows,
            "gain_predicted": gain_predicted, "gain_measured": gain_measured,
            "calibration": calibration.to_dict(), "files": ["nonuniform_costs.png", "nonuniform_costs.csv",
                                                            "step_costs.csv"]}


def recomputations(schedule, steps: int) -> np.ndarray:
    """How often each forward step ``F_i`` runs untaped in ``schedule``."""
    from checkpointing.actions import Advance

    runs = np.zeros(steps + 1, dtype=int)
    for action in schedule:
        if type(action) is Advance:
            runs[action.start] += 1
            runs[action.end] -= 1
    return np.cumsum(runs)[:steps]


def plot(timesteps, uf, ub, rows, schedules, path: Path) -> Path:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.arange(len(timesteps))
    ax.bar(steps - 0.2, uf, 0.4, label="forward uf_i")
    ax.bar(steps + 0.2, ub[:-1], 0.4, label="backward ub_i")
    ax.set(xlabel="step i", ylabel="CPU seconds", title="(a) calibrated step costs (dt doubles every 2 steps)")
    ax.legend(fontsize=8)
    for offset, (name, schedule) in zip((-0.2, 0.2), schedules.items()):
        bx.bar(steps + offset, recomputations(schedule, len(timesteps)), 0.4, label=name)
    bx.set(xlabel="step i", ylabel="times F_i is run (untaped)",
           title="(b) " + "; ".join(f"{r['schedule'].split(' ')[0]}: {r['predicted_s']:.1f}/{r['measured_s']:.1f} s"
                                    for r in rows))
    bx.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    return main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
