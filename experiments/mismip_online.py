r"""Adaptive time steps make the chain's length unknown: the flagship gradient with the online checkpointer.

The gradient of experiments/mismip_flagship.py (:math:`J` = the VAF at the end of Ice1r; controls the melt factor
and the Weertman coefficient :math:`C`), but with the time step of each step taken from the state it starts from:
:math:`\delta t_i = \min(\phi\,\delta t_\mathrm{stable}(x_i), T - t_i)` (icesheet.stability.AdaptiveTimesteps: the
momentum-thickness coupling and transport bounds of icesheet/stability.py at :math:`x_i`, times :math:`\phi`), until
:math:`t = T`.  The number of steps :math:`l` is known only when the run reaches :math:`T`, so no offline schedule can
be planned before it; the online checkpointer (checkpointing/online.py, after Wang, Moin & Iaccarino 2009) decides
step by step which states to keep in ``slots`` RAM slots, and plans the reversal once :math:`l` is known
(CheckpointManager.run_online: each :math:`\delta t_i` is recorded in the first sweep and reused by every
recomputation).

Cost, on the platform calibrated on this machine (checkpointing.adjoint.calibration, on a prefix of
``calibration_steps`` steps of the first :math:`\delta t`): the simulator's makespan of the online schedule for the
:math:`l` reached, against the offline optimum for that :math:`l` on the same platform (H-Revolve, Herrmann & Pallez
2020; on one level it is Revolve's optimum with the measured costs), and the measured makespan against the
predicted one, both in the clock of experiments/mismip_flagship.py (``CLOCK``: CPU time of this process, which the
load of a shared machine distorts far less than wall time; the manager's wall time is reported beside).  Sizes:
default 4 km from data/mismip/ice0_4km.h5, :math:`T` = 10 yr, :math:`\phi` = 0.25, 6 slots; ``--full`` 2 km
from the relaxed state of the flagship run (``DIR/mismip_flagship/relax/``, made if missing), :math:`T` = 100 yr,
:math:`\phi` = 0.5, 20 slots.  (The stable step falls from 1.2 to about 0.3 yr as the
grounding line retreats, so :math:`\phi` = 0.1, the flagship's 0.1 yr at the start, would need about 3500 steps.)

Outputs: ``online.csv`` (one row), ``timesteps.csv`` (:math:`t_i, \delta t_i`), ``mismip_online.png``
(:math:`\delta t_i` against time; online over offline makespan against :math:`l` with the run's :math:`l` marked).
Headline check: the executed counts equal the simulator's for the online schedule of the :math:`l` reached, and the
online makespan is not below the offline optimum (it cannot be).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .harness import main_for, plt, save_figure, write_csv
from .mismip import build
from .mismip_flagship import (CLOCK, CONTROLS, SIZES as FLAGSHIP_SIZES, Progress, calibrate_prefix, counts_phrase,
                              initial_state, state_megabytes)

NAME = "mismip_online"
log = logging.getLogger(f"experiments.{NAME}")

SIZES = {False: {"years": 10.0, "fraction": 0.25, "slots": 6, "calibration_steps": 5, "full_flagship": False},
         True: {"years": 100.0, "fraction": 0.5, "slots": 20, "calibration_steps": 20, "full_flagship": True}}


def cost_ratios(platform, longest: int, points: int = 25) -> list[dict]:
    """Online and offline-optimal makespans on ``platform`` for ``points`` chain lengths up to ``longest``."""
    from checkpointing.hrevolve import hrevolve_tables
    from checkpointing.online import online_schedule
    from checkpointing.simulator import simulate

    tables = hrevolve_tables(longest, platform)
    lengths = sorted({max(1, round(longest * k / points)) for k in range(1, points + 1)})
    return [{"steps": l, "online": simulate(online_schedule(l, platform), platform, l).makespan,
             "offline": tables.value(l)} for l in lengths]


def figure(timesteps, ratios, steps: int, out: Path) -> Path:
    import numpy as np

    times = np.cumsum([0.0] + list(timesteps))[:-1]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].plot(times, timesteps, lw=1)
    axes[0].set_xlabel("model time t_i (yr)")
    axes[0].set_ylabel("dt_i (yr)")
    axes[0].set_title(f"adaptive steps: l = {steps} to reach T = {sum(timesteps):g} yr", fontsize=9)
    axes[1].plot([r["steps"] for r in ratios], [r["online"] / r["offline"] for r in ratios], "o-", ms=3)
    axes[1].axvline(steps, color="k", lw=0.8, ls="--")
    axes[1].set_xlabel("chain length l")
    axes[1].set_ylabel("online / offline-optimal makespan")
    axes[1].set_title("on the calibrated platform (dashed: the run's l)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out / "mismip_online.png")


def run(out: Path, full: bool) -> dict:
    from checkpointing.adjoint import RamTier
    from checkpointing.planners import plan
    from checkpointing.simulator import simulate
    from icesheet.controls import compute_online_gradient
    from icesheet.functionals import build_functional
    from icesheet.stability import AdaptiveTimesteps, time_step_limit

    if CLOCK is not time.process_time:  # the measured makespan below is the manager's process CPU time
        raise RuntimeError(f"experiments.mismip_flagship.CLOCK = {CLOCK.__name__}: the online gradient's measured "
                           "makespan (CheckpointManager's cpu_time) is time.process_time, so CLOCK must be too")
    size = SIZES[full]
    flagship = FLAGSHIP_SIZES[size["full_flagship"]]
    state, drift = initial_state(flagship, out.parent / "mismip_flagship")
    model = build("mismip_ice1r", flagship["cell_size"], state)
    vaf_start = model.volume_above_flotation()
    first_dt = size["fraction"] * time_step_limit(model).dt
    tiers = [RamTier(size["slots"], "ram")]
    calibration = calibrate_prefix(model, tiers, first_dt, size["calibration_steps"], CLOCK)
    platform = calibration.platform()
    rule = AdaptiveTimesteps(model, size["years"], size["fraction"])
    log.info("%g km, %d slots, T = %g yr, dt_0 = %.3f yr; online gradient starts (load %.1f)",
             flagship["cell_size"] / 1e3, size["slots"], size["years"], first_dt, os.getloadavg()[0])
    tick = time.perf_counter()
    gradient = compute_online_gradient(model, lambda l: build_functional(model, "vaf", l), rule, CONTROLS,
                                       platform, tiers, on_step=Progress(log))
    seconds = time.perf_counter() - tick
    result = gradient.result
    counters, predicted, timesteps = result.counters, result.predicted, result.timesteps
    l = len(timesteps)
    offline = simulate(plan("hrevolve", l, platform), platform, l)
    mismatches = counters.mismatches(predicted)
    measured = result.cpu_time  # in CLOCK's units (checked at the start)
    row = {"cell_size": flagship["cell_size"], "years": sum(timesteps), "steps": l, "fraction": size["fraction"],
           "dt_min": min(timesteps[:-1] or timesteps), "dt_max": max(timesteps), "dt_mean": sum(timesteps) / l,
           "slots": size["slots"], "J": gradient.value, "vaf_lost": vaf_start - gradient.value,
           "online_forward_steps": counters.forward_steps, "offline_forward_steps": offline.forward_steps,
           "online_predicted_makespan": predicted.makespan, "offline_predicted_makespan": offline.makespan,
           "online_over_offline": predicted.makespan / offline.makespan, "clock": CLOCK.__name__,
           "measured_makespan": measured, "measured_wall_makespan": sum(counters.wall_time.values()),
           "measured_over_predicted": measured / predicted.makespan, "gradient_run_time": seconds,
           "uf": calibration.uf, "ub": calibration.ub, "peak_rss_mb": counters.peak_rss_mb,
           "state_mb": state_megabytes(model), "counts_match_simulator": not mismatches,
           "load_end": os.getloadavg()[0]}
    write_csv(out / "online.csv", [row])
    write_csv(out / "timesteps.csv", [{"step": i, "dt": dt} for i, dt in enumerate(timesteps)])
    figure(timesteps, cost_ratios(platform, l), l, out)
    ok = bool(not mismatches and predicted.makespan >= offline.makespan * (1 - 1e-12))
    headline = (f"{flagship['cell_size'] / 1e3:g} km, adaptive steps (a fraction {size['fraction']:g} of the "
                f"stable step, {row['dt_min']:.3f}-{row['dt_max']:.3f} yr): l = {l} steps to {row['years']:g} yr, "
                f"online checkpointer on {size['slots']} RAM slots: {counters.forward_steps} forward steps "
                f"(offline optimum {offline.forward_steps}), makespan {predicted.makespan:.0f} s predicted = "
                f"{row['online_over_offline']:.3f} x the offline optimum; {counts_phrase(mismatches)}; "
                f"measured {measured:.0f} s of {CLOCK.__name__} "
                f"({row['measured_over_predicted']:.2f} x predicted); VAF lost {row['vaf_lost']:.3e} m^3")
    return {"headline": headline, "headline_ok": ok, **row, "initial_state": drift, "mismatches": mismatches}


if __name__ == "__main__":
    import sys

    from icesheet.cli import import_firedrake

    import_firedrake()
    raise SystemExit(main_for(sys.modules[__name__]))
