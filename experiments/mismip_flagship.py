r"""The flagship gradient: how the ice lost in MISMIP+ Ice1r depends on the melt and on friction, with bounded memory.

:math:`J` is the volume above flotation (VAF) at the end of ``steps`` steps of ``dt`` years of Ice1r (the scenario
``mismip_ice1r``; docs/mismip.md); the VAF lost is :math:`J(0) - J`, and :math:`J(0)` depends on neither control, so
the gradient of the VAF lost is :math:`-dJ`.  The controls are the melt-rate factor :math:`f` (``melt_factor``, 1 in
MISMIP+) and the Weertman coefficient :math:`C` itself (linear parameterisation, ``friction``, MPa (m/yr)^-1/3), as
in experiments/mismip_sensitivity.py.  Both gradients come from one run of the checkpoint manager
(icesheet.controls.compute_gradient) on an H-Revolve schedule (Herrmann & Pallez 2020, ACM TOMS 46(2)) over a RAM
tier of ``ram_slots`` and a disk tier of ``disk_slots`` checkpoints, planned on the platform calibrated on this
machine (checkpointing.adjoint.calibration: ``uf``, ``ub`` from a store-all gradient of the first
``calibration_steps`` steps, ``w_k``, ``r_k`` measured on the tiers themselves, as ``icesheet gradient --calibrate``
does, but on a prefix of the chain so that the calibration does not cost a whole store-all run).

**The prediction before the run.**  The prefix cannot see how the steps' cost changes along the run (the Newton
iterations grow as the grounding line retreats: a 1 km step costs 1.6 times as much on average over the 100 years
as in the first 20 steps).  So before the calibration a **pilot** runs the whole chain forward, untaped, at
``pilot_cell_size`` (a coarser mesh, from the 4 km steady state; :func:`pilot_costs`), and the simulator predicts
the run's makespan with per-step costs (``Calibration.predict_chain``): forward costs the prefix's mean times the
pilot's per-step costs relative to its own first ``calibration_steps`` (``drift_profile``), backward costs the
prefix's mean with that of the last step (the adjoint of J alone) apart, and the calibrated tiers.  The schedule is
planned on the chain's mean costs (``Calibration.platform(steps=..., profile=...)``).  Reported beside it: the same
without the pilot, and the same schedule re-costed on the prefix's uniform platform (docs/mismip.md, "Why the
predicted time missed").

**The forecast before the reverse sweep.**  When the first forward sweep reaches :math:`x_l`, the rest of the
schedule (recomputations, backward steps, reads and writes) is predicted on the simulator with the cost of every
forward step as that sweep measured it and the calibrated backward and tier costs
(checkpointing.adjoint.calibration, ``FirstSweepForecast``; :func:`forecast_from_first_sweep` recomputes it after a
run from its per-step times).  The measured rest is compared with it.  All predictions and what they are compared
with are in CPU seconds of this process (``CLOCK``): on a machine whose cores other jobs share, a step's CPU time
changes far less with the load than its wall time (the wall times, the manager's per action kind, are reported
beside them, with the CPU share of the first sweep and of the rest); on an idle machine the two agree.

Initial state: the 4 km Ice0 steady state (data/mismip/ice0_4km.h5), used as is at 4 km; at 2 km, interpolated onto
the finer mesh (``IceModel.load_state``) and relaxed under Ice0 for ``relax_years`` (experiments/mismip.py,
``spin_up``; the relaxed state is written to ``DIR/relax/`` and reused by a later run with the same sizes).  A 2 km
steady state needs thousands of years (docs/mismip.md): the relaxed state still drifts, and its drift is reported.
At 1 km, the relaxed 2 km state interpolated once more and relaxed ``relax_years`` at 1 km (``DIR/relax_1km/``).

Sizes (``--size``): ``default`` 4 km, 40 steps of 0.5 yr, 4 RAM + 8 disk slots (2 minutes); ``full`` (``--full``)
2 km, 1000 steps of 0.1 yr (100 years, the whole of Ice1r), 10 RAM + 40 disk slots: checkpoints for 5 % of the
states, so that about as many steps are recomputed as taken; ``1km``: 1 km, 1000 steps of 0.1 yr, starting from the
2 km relaxed state (made first if ``DIR/relax/`` does not hold it) interpolated onto 1 km and relaxed 20 more years
under Ice0 (``DIR/relax_1km/``), 10 RAM + 990 disk slots: a 1 km step costs 2-5 s, so every recomputed step would
cost that again, and the disk (1.25 MB a state) holds every state while RAM holds 10 (71 minutes on one core of
this machine, docs/mismip.md "Run 4").  ``--steps N`` runs the first ``N`` steps of a size (same ``dt``, slots and
pilot size).  Outputs: ``mismip_flagship.png`` (both sensitivities, L2 Riesz
representatives, with the grounding line at the start and at the end), ``flagship.csv`` (one row: J, VAF lost,
sizes, schedule, counts, measured and predicted times, peak RSS, state size), ``calibration.json`` (with the
first sweep's and the pilot's step costs),
``gradients.h5`` (the two fields), ``steps_live.csv`` (every model step as it ran, written as it goes) and
``step_costs.csv`` (:func:`step_costs`: the time of every untaped forward step, the first sweep's marked, and of
every backward step, in order).

The relaxed 2 km state is not steady and the discrete Ice1r is not converged in the time step (docs/mismip.md).

Headline check: the run did exactly what the simulator counts for the schedule (forward and backward steps, reads,
writes and peak occupancy per tier) and the VAF falls; the measured-over-predicted time is reported beside it.  The
Taylor test of this gradient (at 8 km) is in tests/icesheet/test_mismip_flagship.py.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

from .harness import parser_for, plt, run_one, save_figure, setup_logging, write_csv
from .mismip import STATES, build, grounded_field, saved_time, spin_up
from .mismip_sensitivity import directions

NAME = "mismip_flagship"
log = logging.getLogger(f"experiments.{NAME}")

CONTROLS = ("melt", "friction")
SIZES = {
    False: {"cell_size": 4000.0, "steps": 40, "dt": 0.5, "ram_slots": 4, "disk_slots": 8, "relax_years": 0.0,
            "calibration_steps": 5, "pilot_cell_size": 8000.0},
    True: {"cell_size": 2000.0, "steps": 1000, "dt": 0.1, "ram_slots": 10, "disk_slots": 40, "relax_years": 200.0,
           "calibration_steps": 20, "pilot_cell_size": 4000.0},
    # the 2 km relaxed state (SIZES[True], made first if absent) interpolated onto 1 km and relaxed 20 more years;
    # disk slots for every state: a 1 km step costs 2-5 s, so each recomputed step would add that (module docstring)
    "1km": {"cell_size": 1000.0, "steps": 1000, "dt": 0.1, "ram_slots": 10, "disk_slots": 990, "relax_years": 20.0,
            "calibration_steps": 20, "start": True, "relax_dir": "relax_1km", "relax_log_every": 2.0,
            "pilot_cell_size": 4000.0},
}
#: the sizes by the names of ``--size`` (``--full`` is ``--size full``)
SIZE_NAMES = {"default": False, "full": True, "1km": "1km"}
SOURCE_STATE = STATES / "ice0_4km.h5"
CLOCK = time.process_time  # the clock of the calibration and the forecast (module docstring)
LOG_EVERY = 50  # model steps between progress lines


def calibrate_prefix(model, tiers, dt: float, steps: int, clock=time.perf_counter):
    """The calibration (checkpointing.adjoint.calibration) of ``tiers`` on a store-all gradient of the first
    ``steps`` steps of ``dt`` years: J = the VAF at the end, the controls ``CONTROLS``; times read from ``clock``."""
    from checkpointing.adjoint.calibration import calibrate
    from icesheet.controls import time_loop
    from icesheet.functionals import build_functional

    return calibrate(time_loop(model, build_functional(model, "vaf", steps), [dt] * steps, CONTROLS), tiers,
                     clock=clock)


def pilot_costs(cell_size: float, steps: int, dt: float, clock=time.perf_counter) -> list[float]:
    """The time on ``clock`` of each of ``steps`` untaped steps of ``dt`` years of Ice1r at ``cell_size`` from the
    4 km steady state (``SOURCE_STATE``): the pilot whose relative step costs
    (checkpointing.adjoint.calibration.drift_profile) carry the calibration prefix to the whole chain (module
    docstring).  One step of another model first, untimed, compiles the kernels."""
    from firedrake.adjoint import stop_annotating

    costs = []
    with stop_annotating():
        build("mismip_ice1r", cell_size, SOURCE_STATE).step(dt)
        model = build("mismip_ice1r", cell_size, SOURCE_STATE)
        for _ in range(steps):
            start = clock()
            model.step(dt)
            costs.append(clock() - start)
    return costs


def initial_state(size: dict, out: Path) -> tuple[Path, dict]:
    """The state Ice1r starts from and what is known of its drift under Ice0 (see the module docstring): ``size``'s
    ``start`` (a key of :data:`SIZES`, default the 4 km steady state ``size["source"]``, default
    :data:`SOURCE_STATE`) relaxed ``relax_years`` at ``cell_size`` (``mismip_ice0`` with ``size["overrides"]``, if
    given) into ``out / size["relax_dir"]`` (default ``relax``), or that state again if an earlier run made it."""
    source_state = size.get("source", SOURCE_STATE)
    if size["relax_years"] == 0:
        if size["cell_size"] != 4000.0:
            raise ValueError(f"cell_size = {size['cell_size']:g}: without relaxation only the 4 km state is steady")
        return source_state, {"relax_years": 0.0, "source": str(source_state.relative_to(STATES.parent.parent))}
    if size.get("start") is None:
        source, source_drift = source_state, {}
        source_name = str(source_state.relative_to(STATES.parent.parent))
    else:
        source, source_drift = initial_state(SIZES[size["start"]], out)
        source_name = str(source.relative_to(out.parent))
    directory = out / size.get("relax_dir", "relax")
    state = directory / f"ice0_{size['cell_size'] / 1000:g}km.h5"
    start = saved_time(source)
    if not (state.is_file() and saved_time(state) >= start + size["relax_years"] - 1e-6):
        shutil.rmtree(directory, ignore_errors=True)
        tick = time.perf_counter()
        spin_up(size["cell_size"], size["relax_years"], directory, restart=source,
                save_every=size["relax_years"], log_every=size.get("relax_log_every", 10.0),
                overrides=size.get("overrides"))
        log.info("relaxed %g years under Ice0 at %g km in %.0f s", size["relax_years"], size["cell_size"] / 1e3,
                 time.perf_counter() - tick)
    drift = {"relax_years": size["relax_years"], "source": source_name, **relaxation_drift(directory / "spinup.csv")}
    return state, ({**drift, "source_relaxation": source_drift} if source_drift else drift)


def relaxation_drift(log_path: Path) -> dict:
    """The VAF change per year over the second half of the relaxation and over its last 10 years (m^3/yr), and
    the centreline grounding line at its end (m), from the spin-up's log."""
    import csv

    with open(log_path) as handle:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(handle)]
    middle = rows[(len(rows) - 1) // 2]
    return {"vaf_rate_second_half": (rows[-1]["vaf"] - middle["vaf"]) / (rows[-1]["time"] - middle["time"]),
            "vaf_rate_last_row": rows[-1]["vaf_rate"], "grounding_line_end": rows[-1]["grounding_line"],
            "grounding_line_start": rows[0]["grounding_line"]}


def flagship_gradient(model, steps: int, dt: float, ram_slots: int, disk_slots: int, disk_dir: Path,
                      calibration_steps: int, on_step=None, clock=time.perf_counter, profile=None) -> dict:
    """J = VAF after ``steps`` steps of ``dt`` and dJ/df, dJ/dC through H-Revolve on a calibrated RAM + disk
    platform (module docstring).  Returns the Gradient, the schedule, the calibration, the platform (the chain's
    mean costs, ``Calibration.platform(steps=..., profile=...)``), the predictions made before the run
    (``predicted``: ``Calibration.predict_chain`` with the relative cost profile ``profile``, e.g. a pilot's
    ``drift_profile``; ``predicted_flat``: the same without a profile; ``predicted_prefix``: the same schedule with
    the prefix's mean costs on every step, not the old plan), the forecast made when the first sweep reached x_l
    (``FirstSweepForecast``, which passes every step on to ``on_step``) and the thickness at the end of the run
    (captured when the manager evaluates j_l).  The calibration, the forecast and ``on_step`` read step times from ``clock``."""
    from firedrake.adjoint import stop_annotating

    from checkpointing.adjoint import DiskTier, RamTier
    from checkpointing.adjoint.calibration import FirstSweepForecast
    from checkpointing.planners import plan
    from checkpointing.simulator import simulate
    from icesheet.controls import compute_gradient
    from icesheet.functionals import build_functional

    tiers = [RamTier(ram_slots, "ram"), DiskTier(disk_dir, disk_slots, "disk")]
    calibration = calibrate_prefix(model, tiers, dt, min(calibration_steps, steps), clock)
    platform = calibration.platform(steps=steps, profile=profile)
    schedule = plan("hrevolve", steps, platform)
    predicted = calibration.predict_chain(schedule, steps, profile, platform)
    predictions = {"predicted": predicted, "predicted_flat": calibration.predict_chain(schedule, steps, None, platform),
                   "predicted_prefix": simulate(schedule, calibration.platform(), steps)}
    functional = build_functional(model, "vaf", steps, "final")
    final = {}

    def vaf_at_end(index, state):
        if index == steps:
            with stop_annotating():
                final["thickness"] = state[0].copy(deepcopy=True)
        return functional(index, state)

    forecast = FirstSweepForecast(schedule, calibration, steps, then=on_step, platform=platform,
                                  announce=lambda predictions: announce_forecast(predictions, predicted))
    gradient = compute_gradient(model, vaf_at_end, [dt] * steps, CONTROLS, schedule=schedule, platform=platform,
                                storage=tiers, on_step=forecast, clock=clock)
    return {"gradient": gradient, "schedule": schedule, "calibration": calibration, **predictions,
            "platform": platform, "forecast": forecast, "final_thickness": final["thickness"]}


def announce_forecast(predictions: dict, predicted) -> None:
    """The log line of the forecast made when the first sweep reaches x_l, before the rest runs."""
    now = predictions["constant"]
    log.info("first sweep at x_l after %.0f s of steps; forecast of the rest: %.0f s (recomputation %.0f, backward "
             "%.0f, storage %.1f; %.0f s if the backward steps followed the forward ones), makespan %.0f s "
             "(calibration prefix: %.0f s); load %.1f", now["first_sweep"], now["rest"], now["recomputation"],
             now["backward"], now["storage"], predictions["forward"]["rest"], now["first_sweep"] + now["rest"],
             predicted.makespan, os.getloadavg()[0])


def forecast_from_first_sweep(schedule, platform, first_sweep_costs, calibration, measured_rest: float,
                              measured_recomputation: float, predictions: dict | None = None) -> dict:
    """The forecast made when the first sweep reaches x_l (checkpointing.adjoint.calibration.forecast_rest, both
    backward models) against what the rest of the run measured: ``measured_rest`` (from the end of the first
    sweep to the end of the run) and ``measured_recomputation`` (its untaped steps), in the clock of
    ``first_sweep_costs`` and the calibration.  Callable after a run from its schedule, platform, calibration and
    per-step times (the first ``l`` untaped steps are the first sweep), or with the ``predictions`` that
    ``FirstSweepForecast`` made during the run (the same forecasts, not computed again).  The rest's backward steps
    and storage are measured together, as the rest minus its untaped steps."""
    from checkpointing.adjoint.calibration import BACKWARD_MODELS, forecast_rest

    forecasts = predictions or {model: forecast_rest(schedule, calibration, first_sweep_costs, model, platform)
                                for model in BACKWARD_MODELS}
    now = forecasts["constant"]
    return {"first_sweep_seconds": now["first_sweep"],
            "first_sweep_mean_step": float(sum(first_sweep_costs)) / len(first_sweep_costs),
            "predicted_rest": now["rest"], "measured_rest": measured_rest,
            "measured_over_predicted_rest": measured_rest / now["rest"],
            "predicted_rest_forward_model": forecasts["forward"]["rest"],
            "measured_over_predicted_rest_forward_model": measured_rest / forecasts["forward"]["rest"],
            "predicted_recomputation": now["recomputation"], "measured_recomputation": measured_recomputation,
            "predicted_backward_and_storage": now["backward"] + now["storage"],
            "predicted_backward_and_storage_forward_model":
                forecasts["forward"]["backward"] + forecasts["forward"]["storage"],
            "measured_backward_and_storage": measured_rest - measured_recomputation,
            "predicted_makespan_first_sweep_costs": now["first_sweep"] + now["rest"]}


def rest_clocks(forecast, result) -> dict:
    """Wall and CPU time of this process over the first sweep (``forecast.clocks``, from just before the
    manager's run to the forecast) and over the rest (the manager's ``result.run_time``, ``result.cpu_time`` minus
    the first sweep's): the CPU share of each phase tells how loaded the machine was."""
    (wall0, cpu0), (wall1, cpu1) = forecast.clocks["start"], forecast.clocks["first_sweep_end"]
    wall, cpu = result.run_time - (wall1 - wall0), result.cpu_time - (cpu1 - cpu0)
    return {"measured_rest_wall": wall, "measured_rest_cpu": cpu,
            "first_sweep_cpu_over_wall": (cpu1 - cpu0) / (wall1 - wall0), "rest_cpu_over_wall": cpu / wall}


class Progress:
    """``on_step`` for the manager: a log line every :data:`LOG_EVERY` model steps (forward and re-taped steps
    counted apart), with the load average; ``events`` holds every step as ``(taped, seconds, end, picard, newton,
    chord)`` (the velocity solves' iterations)
    (``end``: s since the start; both on :data:`CLOCK`, the manager's step clock here), also appended to the CSV
    ``path`` as they come (flushed: a stopped run keeps its steps so far)."""

    COLUMNS = ("kind", "seconds", "end", "picard_iterations", "newton_iterations", "chord_iterations")

    def __init__(self, logger: logging.Logger = log, path: Path | None = None):
        self.log = logger
        self.forward = self.taped = 0
        self.events: list[tuple] = []
        self.start, self.start_wall = CLOCK(), time.perf_counter()
        self.handle = None
        if path is not None:
            self.handle = open(path, "w", newline="")
            self.handle.write(",".join(self.COLUMNS) + "\n")

    def __call__(self, info, taped, seconds):
        if taped:
            self.taped += 1
        else:
            self.forward += 1
        event = (taped, seconds, CLOCK() - self.start, info.picard_iterations, info.newton_iterations,
                 info.chord_iterations)
        self.events.append(event)
        if self.handle is not None:
            self.handle.write(f"{'re-taped' if taped else 'forward'},{seconds:.4f},{event[2]:.3f},{event[3]},"
                              f"{event[4]},{event[5]}\n")
            self.handle.flush()
        done = self.forward + self.taped
        if done % LOG_EVERY == 0:
            self.log.info("model steps %d (forward %d, re-taped %d), last %.2f s (%d Picard + %d Newton + %d chord), %.0f s "
                          "elapsed, load %.1f", done, self.forward, self.taped, seconds,
                     info.picard_iterations, info.newton_iterations, info.chord_iterations, time.perf_counter() - self.start_wall,
                     os.getloadavg()[0])

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def step_costs(events, end: float, steps: int) -> list[dict]:
    """Rows of the per-step CSV from :class:`Progress` ``events`` and ``end`` (s since the start, when the
    manager's run returned), in the order the steps ran: every untaped forward step (``sweep`` "first" for the
    first ``steps``, the first sweep, "recomputed" after) with its measured time, and every backward step B_i,
    i < l, with the time from the start of its re-taped step to the start of the next step (or ``end``): re-taping
    and the adjoint solve, plus the few milliseconds of the read that follows (B_l, the adjoint of J alone, has no
    step and is not listed; B_0's time runs to ``end`` and includes the manager's closing garbage collection)."""
    rows, forward = [], 0
    for k, (taped, seconds, finish, picard, newton, chord) in enumerate(events):
        if not taped:
            rows.append({"kind": "forward", "sweep": "first" if forward < steps else "recomputed", "seconds": seconds,
                         "retape_seconds": "", "picard_iterations": picard, "newton_iterations": newton,
                         "chord_iterations": chord})
            forward += 1
            continue
        begin = finish - seconds
        following = events[k + 1][2] - events[k + 1][1] if k + 1 < len(events) else end
        rows.append({"kind": "backward", "sweep": "", "seconds": following - begin, "retape_seconds": seconds,
                     "picard_iterations": picard, "newton_iterations": newton, "chord_iterations": chord})
    return rows


def figure(model, riesz: dict, final_thickness, title: str, out: Path) -> Path:
    """Both sensitivities (colour scale clipped at the 99.5th percentile of |g|, so that the largest nodal values
    along the grounding line do not hide the rest), grounding line at the start (black) and the end (green)."""
    import numpy as np
    from firedrake.pyplot import tricontour, tripcolor

    start, end = grounded_field(model, model.thickness), grounded_field(model, final_thickness)
    fig, axes = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True)
    labels = {"melt": "dJ/df (m$^3$ per m$^2$ per unit f)",
              "friction": "dJ/dC (m$^3$ per m$^2$ per MPa (m/yr)$^{-1/3}$)"}
    for ax, control in zip(axes, CONTROLS):
        values = np.abs(riesz[control].dat.data_ro)
        bound = float(np.percentile(values, 99.5)) or float(values.max()) or 1.0
        colours = tripcolor(riesz[control], axes=ax, cmap="RdBu", vmin=-bound, vmax=bound)
        fig.colorbar(colours, ax=ax, label=labels[control], extend="both")
        tricontour(start, levels=[0.5], axes=ax, colors="k", linewidths=0.8)
        tricontour(end, levels=[0.5], axes=ax, colors="g", linewidths=0.8)
        ax.set_xlim(300e3, 640e3)
        ax.set_aspect("auto")
    axes[0].set_title(title, fontsize=9)
    axes[1].set_xlabel("x (m); black: grounding line at t = 0, green: at the end")
    fig.tight_layout()
    return save_figure(fig, out / "mismip_flagship.png")


def counts_phrase(mismatches: list) -> str:
    """How the manager's counts compare with the simulator's, for a headline."""
    return "counts match the simulator" if not mismatches else \
        "counts DIFFER FROM the simulator (" + "; ".join(mismatches) + ")"


def state_megabytes(model) -> float:
    """The size of one checkpoint (the state Functions' values on all ranks), MB."""
    local = sum(f.dat.data_ro.nbytes for f in model.state)
    return model.mesh.comm.allreduce(local) / 1e6


def size_for(name: str, steps: int | None = None) -> dict:
    """The sizes named ``name`` (a key of :data:`SIZE_NAMES`), over their first ``steps`` steps if given; a
    ValueError naming the value and what is allowed otherwise."""
    if name not in SIZE_NAMES:
        raise ValueError(f"size = {name!r}: choose one of {', '.join(SIZE_NAMES)}")
    size = SIZES[SIZE_NAMES[name]]
    if steps is None:
        return size
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= size["steps"]:
        raise ValueError(f"--steps = {steps!r}: must be an integer in 1..{size['steps']} for the size {name!r}")
    return {**size, "steps": steps}


def run(out: Path, full: bool, size: str | None = None, steps: int | None = None) -> dict:
    """The experiment at ``size`` (a key of :data:`SIZE_NAMES`; default ``"full"`` if ``full``, else
    ``"default"``), over the first ``steps`` steps of it if given (the same ``dt``, slots and pilot)."""
    import firedrake as fd

    from checkpointing.adjoint.calibration import drift_profile

    name = size or ("full" if full else "default")
    size = size_for(name, steps)
    load_start = os.getloadavg()
    tick = time.perf_counter()
    state, drift = initial_state(size, out)
    relax_seconds = time.perf_counter() - tick
    steps, dt = size["steps"], size["dt"]
    tick = CLOCK()
    pilot = pilot_costs(size["pilot_cell_size"], steps, dt, CLOCK)
    pilot_seconds = CLOCK() - tick
    prefix = min(size["calibration_steps"], steps)
    profile = drift_profile(pilot, prefix)
    log.info("pilot: %d steps at %g km in %.0f s of CPU time, mean step %.2f times that of its %s",
             steps, size["pilot_cell_size"] / 1e3, pilot_seconds, profile.mean(),
             f"steps 1-{prefix - 1}" if prefix > 1 else "step 0")
    model = build("mismip_ice1r", size["cell_size"], state)
    vaf_start = model.volume_above_flotation()
    log.info("%g km, %d dofs, %d steps of %g yr, state %.2f MB; calibrating on %d steps", size["cell_size"] / 1e3,
             model.thickness.function_space().dim(), steps, dt, state_megabytes(model), size["calibration_steps"])
    tick = time.perf_counter()
    disk_dir = out / "checkpoints"
    progress = Progress(path=out / "steps_live.csv")
    try:
        result = flagship_gradient(model, steps, dt, size["ram_slots"], size["disk_slots"], disk_dir,
                                   size["calibration_steps"], on_step=progress, clock=CLOCK, profile=profile)
    finally:
        progress.close()
    total_seconds = time.perf_counter() - tick
    write_csv(out / "step_costs.csv", step_costs(progress.events, CLOCK() - progress.start, steps))
    gradient, predicted, calibration = result["gradient"], result["predicted"], result["calibration"]
    counters = gradient.result.counters
    mismatches = counters.mismatches(predicted)
    measured, measured_cpu = sum(counters.wall_time.values()), gradient.result.cpu_time
    clocks = rest_clocks(result["forecast"], gradient.result)
    forecast = forecast_from_first_sweep(result["schedule"], result["platform"],
                                         result["forecast"].first_sweep_costs, calibration,
                                         clocks["measured_rest_cpu"], result["forecast"].recomputed_seconds,
                                         result["forecast"].predictions)
    ram = counters.to_dict()
    h = directions(model)
    slopes = {c: float(gradient.derivative[c].dat.inner(h[c].dat)) for c in CONTROLS}
    row = {"size": name, "cell_size": size["cell_size"], "dofs": model.thickness.function_space().dim(), "steps": steps,
           "dt": dt, "years": steps * dt, "J": gradient.value, "vaf_start": vaf_start,
           "vaf_lost": vaf_start - gradient.value, "melt_doubled": slopes["melt"],
           "friction_plus_10_percent": slopes["friction"], "schedule": "hrevolve", "ram_slots": size["ram_slots"],
           "disk_slots": size["disk_slots"], "forward_steps": counters.forward_steps,
           "recomputed_steps": counters.forward_steps - steps, "backward_steps": counters.backward_steps,
           "ram_writes": ram["writes"][0], "ram_reads": ram["reads"][0], "disk_writes": ram["writes"][1],
           "disk_reads": ram["reads"][1], "peak_ram": ram["peak"][0], "peak_disk": ram["peak"][1],
           "uf": calibration.uf, "ub": calibration.ub, "disk_write": calibration.write_costs[1],
           "disk_read": calibration.read_costs[1], "pilot_cell_size": size["pilot_cell_size"],
           "pilot_seconds": pilot_seconds, "pilot_drift": float(profile.mean()),
           "predicted_makespan": predicted.makespan, "measured_makespan": measured,
           "measured_cpu_makespan": measured_cpu, "clock": CLOCK.__name__,
           "measured_over_predicted": measured_cpu / predicted.makespan,
           "measured_wall_over_predicted": measured / predicted.makespan,
           "predicted_makespan_no_pilot": result["predicted_flat"].makespan,
           "measured_over_predicted_no_pilot": measured_cpu / result["predicted_flat"].makespan,
           "predicted_makespan_prefix": result["predicted_prefix"].makespan,
           "measured_over_predicted_prefix": measured_cpu / result["predicted_prefix"].makespan,
           **forecast, **clocks,
           "measured_over_predicted_first_sweep_costs":
               measured_cpu / forecast["predicted_makespan_first_sweep_costs"],
           "gradient_run_time": gradient.wall_time, "calibration_run_time": calibration.run_time,
           "total_seconds": total_seconds, "relax_seconds": relax_seconds, "peak_rss_mb": counters.peak_rss_mb,
           "state_mb": state_megabytes(model), "load_start": load_start[0], "load_end": os.getloadavg()[0],
           "counts_match_simulator": not mismatches}
    write_csv(out / "flagship.csv", [row])
    (out / "calibration.json").write_text(json.dumps({**calibration.to_dict(), "initial_state": drift,
                                                      "first_sweep_costs": result["forecast"].first_sweep_costs,
                                                      "pilot_costs": pilot},
                                                     indent=1))
    with fd.CheckpointFile(str(out / "gradients.h5"), "w") as handle:
        handle.save_mesh(model.mesh)
        for g in gradient.riesz.values():
            handle.save_function(g)
    title = (f"MISMIP+ Ice1r, {size['cell_size'] / 1e3:g} km, {steps} steps of {dt:g} yr: sensitivity of the "
             f"final VAF to the melt factor (top) and to friction C (bottom)")
    if model.mesh.comm.size == 1:
        figure(model, gradient.riesz, result["final_thickness"], title, out)
    ok = bool(not mismatches and row["vaf_lost"] > 0 and math.isfinite(gradient.value))
    headline = (f"{size['cell_size'] / 1e3:g} km, {steps} steps of {dt:g} yr: VAF lost {row['vaf_lost']:.3e} m^3; "
                f"doubling the melt changes the final VAF by {slopes['melt']:+.3e} m^3, 10 % more friction by "
                f"{slopes['friction']:+.3e} m^3; H-Revolve on {size['ram_slots']} RAM + {size['disk_slots']} disk "
                f"slots: {counters.forward_steps} forward steps ({row['recomputed_steps']} recomputed), "
                f"{row['disk_writes']} disk writes, {counts_phrase(mismatches)}; {CLOCK.__name__} measured "
                f"{measured_cpu:.0f} s / predicted before the run {predicted.makespan:.0f} s = "
                f"{row['measured_over_predicted']:.2f} (calibration prefix and {size['pilot_cell_size'] / 1e3:g} km "
                f"pilot; prefix alone {row['measured_over_predicted_prefix']:.2f}); after the first sweep ({row['first_sweep_seconds']:.0f} s) the rest "
                f"{row['measured_rest']:.0f} s / forecast at x_l {row['predicted_rest']:.0f} s = "
                f"{row['measured_over_predicted_rest']:.2f}; "
                f"peak RSS {counters.peak_rss_mb:.0f} MB, state {row['state_mb']:.2f} MB")
    return {"headline": headline, "headline_ok": ok, **row, "initial_state": drift, "mismatches": mismatches,
            "wall_time_by_action": dict(counters.wall_time)}


def main(argv=None) -> int:
    """``python -m experiments.mismip_flagship --out DIR [--full | --size NAME] [--steps N]``: as every experiment
    (experiments/harness.py), with ``--size`` naming one of :data:`SIZE_NAMES` (``--full`` = ``--size full``) and
    ``--steps`` the first ``N`` steps of that size (to measure the prediction on chains of several lengths)."""
    parser = parser_for(__doc__.strip().splitlines()[0])
    parser.add_argument("--size", choices=list(SIZE_NAMES),
                        help="default: 4 km, 40 steps; full (= --full): 2 km, 1000 steps; 1km: 1 km, 1000 steps")
    parser.add_argument("--steps", type=int, help="only the first N steps of the size (same dt, slots, pilot)")
    args = parser.parse_args(argv)
    if args.full and args.size not in (None, "full"):
        parser.error(f"--size = {args.size!r} with --full: --full is --size full; give one of them")
    size = args.size or ("full" if args.full else "default")
    try:
        size_for(size, args.steps)
    except ValueError as error:
        parser.error(str(error))
    setup_logging()
    from icesheet.cli import import_firedrake

    import_firedrake()
    options = {"size": size} if args.steps is None else {"size": size, "steps": args.steps}
    summary = run_one(sys.modules[__name__], args.out, size == "full", **options)
    return 0 if summary["headline_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
