"""MISMIP+ Ice0, Ice1r and Ice1ra against published results: grounding line, VAF and grounded area over 100 years.

MISMIP+ (Asay-Davis et al. 2016, GMD 9, 2471; docs/mismip.md): the scenarios ``mismip_ice0`` and ``mismip_ice1r``
(icesheet/data/scenarios/) start from the steady state of an Ice0 spin-up and run 100 years, without and with the Ice1
sub-shelf melt; ``mismip_ice1ra`` continues from the end of Ice1r for 100 years without melt.  Diagnostics every
step: volume above flotation (VAF), grounded area, and the grounding-line position on the centreline y = 40 km (the
first x, going downstream, where the height above flotation :math:`h + (\rho_W/\rho_I) b` changes sign, linear
between samples every 250 m).  The published comparison (:data:`PEER`, from data/mismip/peer_wavi.json) is the WAVI
model's MISMIP+ output (1 and 2 km, L1L2 stresses, Weertman friction), a member of the ensemble of Cornford et al.
(2020, The Cryosphere 14, 2283).

Two entry points:

- ``python -m experiments.mismip spinup --cell-size 8000 --years 20000 --out DIR [--restart STATE.h5]``: Ice0 from
  its initial condition (or a saved state) toward steady state, with time steps growing by 1.5 per step from
  0.25 yr up to a Courant limit, halved and retried when a solve fails; saves the state (firedrake.CheckpointFile +
  a JSON with the time) every ``--save-every`` years and at the end, logs VAF drift and grounding line to
  ``DIR/spinup.csv``.  A stopped run restarts from its last saved state.
- ``python -m experiments.mismip --out DIR [--full]``: the three experiments from the spin-up state in
  ``data/mismip/`` (default: 4 km; ``--full``: 2, 4 and 8 km, those saved, see :func:`sizes`), figures, tables and
  the final state of each (``DIR/mismip/<experiment>_final.h5``).

Headline check: Ice0 stays steady (its centreline grounding line moves by less than one cell in 100 years) and Ice1r
retreats (VAF falls, the grounding line moves upstream); the numbers beside the peer's are in the headline.
"""
from __future__ import annotations

import argparse
import csv
import functools
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from .harness import main_for, plt, save_figure, setup_logging, write_csv

NAME = "mismip"
log = logging.getLogger(f"experiments.{NAME}")

ROOT = Path(__file__).resolve().parent.parent
STATES = ROOT / "data" / "mismip"
CENTRELINE = 40e3  # m
SAMPLE_SPACING = 250.0  # m, along the centreline
YEARS = 100.0
RAMP = 1.5  # growth factor of the spin-up's steps after a (re)start

#: WAVI's MISMIP+ results (data/mismip/peer_wavi.json: source, units): {"WAVI 1 km" | "WAVI 2 km": {experiment:
#: {"vaf" | "grounded_area" | "grounding_line": 11 values, every 10 years over the experiment's first 100 years}}}
PEER = json.loads((STATES / "peer_wavi.json").read_text())["models"]
PEER_TIMES = [10.0 * k for k in range(11)]  # yr after each experiment's start
#: The MISMIP+ ensemble (data/mismip/ensemble_cornford2020.json: source, method, what is missing): {member:
#: {"model", "stress", "sliding", "cell_km", "ice0" | "ice1r": {"grounding_line" | "vaf" | "grounded_area": 11
#: values at PEER_TIMES, or None}}}; members are the supplement's file names of Cornford et al. (2020).
ENSEMBLE = json.loads((STATES / "ensemble_cornford2020.json").read_text())["members"]
#: the members like our model: shallow-shelf stresses and Weertman sliding (``ensemble_values`` keywords)
SSA_WEERTMAN = {"stress": ("SSA",), "sliding": ("Weertman",)}
#: the experiments in order, each with the state it starts from and its start time (yr)
EXPERIMENTS = (("ice0", "spin-up", 0.0), ("ice1r", "spin-up", 0.0), ("ice1ra", "ice1r", 100.0))


def ensemble_values(experiment: str, key: str, t: float, stress=None, sliding=None) -> dict:
    """The ensemble's ``key`` at ``t`` years of ``experiment`` ("ice0" or "ice1r"), {member: value}, over the members
    whose stress approximation is in ``stress`` and sliding law in ``sliding`` (None: any) and that report it.  A
    member without an Ice0 series gives its Ice1r value at t = 0 for Ice0 at t = 0 (both are its spun-up state)."""
    k = PEER_TIMES.index(t)
    values = {}
    for name, member in ENSEMBLE.items():
        if (stress and member["stress"] not in stress) or (sliding and member["sliding"] not in sliding):
            continue
        series = member[experiment] or (member["ice1r"] if experiment == "ice0" and k == 0 else None)
        if series and series[key][k] is not None:
            values[name] = series[key][k]
    return values


# -- diagnostics ---------------------------------------------------------------------------------------------------
def centreline_grounding_line(model, y: float = CENTRELINE, spacing: float = SAMPLE_SPACING) -> float:
    """The first x (m) on the line ``y`` where the height above flotation h + (rho_W/rho_I) b, sampled every
    ``spacing``, falls to zero or below (linear interpolation between samples); ``nan`` if the ice is grounded along
    the whole line, 0 if it floats at x = 0."""
    from icesheet import constants

    xs, evaluator = _centreline(model.mesh, y, spacing)
    height = (evaluator.evaluate(model.thickness)
              + model.water_density / constants.ice_density * evaluator.evaluate(model.bed))
    afloat = np.flatnonzero(height <= 0)
    if afloat.size == 0:
        return float("nan")
    k = int(afloat[0])
    if k == 0:
        return 0.0
    return float(xs[k - 1] + (xs[k] - xs[k - 1]) * height[k - 1] / (height[k - 1] - height[k]))


@functools.lru_cache(maxsize=4)
def _centreline(mesh, y: float, spacing: float):
    """Sample abscissae along y and a firedrake.PointEvaluator for them (built once per mesh)."""
    import firedrake as fd

    coordinates = mesh.coordinates.dat.data_ro
    length = mesh.comm.allreduce(float(coordinates[:, 0].max()) if len(coordinates) else 0.0, op=_max())
    xs = np.linspace(0.0, length, int(round(length / spacing)) + 1)
    return xs, fd.PointEvaluator(mesh, [(x, y) for x in xs], tolerance=1e-6)


def _max():
    from mpi4py import MPI

    return MPI.MAX


def _min():
    from mpi4py import MPI

    return MPI.MIN


def grounded_field(model, thickness):
    """The grounded indicator of ``thickness`` over ``model``'s bed as a Function of the thickness's space (1 grounded,
    0 afloat; its 0.5 contour is the grounding line on the maps)."""
    import firedrake as fd

    from icesheet import physics

    return fd.Function(thickness.function_space()).interpolate(
        physics.grounded_indicator(thickness, model.bed, rho_water=model.water_density))


def diagnostics(model) -> dict:
    """time (yr), VAF (m^3), volume (m^3), grounded area (m^2), centreline grounding line (m)."""
    return {"time": model.time, "vaf": model.volume_above_flotation(), "volume": model.volume(),
            "grounded_area": model.grounded_area(), "grounding_line": centreline_grounding_line(model)}


def max_speed(model) -> float:
    """max |u| over the velocity's nodes (m/yr), on every rank."""
    u = model.velocity.dat.data_ro
    local = float(np.sqrt((u * u).sum(axis=1)).max()) if len(u) else 0.0
    return model.mesh.comm.allreduce(local, op=_max())


# -- time stepping -------------------------------------------------------------------------------------------------
def courant_step(model, cell_size: float, courant: float, dt_max: float) -> float:
    """dt = min(dt_max, courant * cell_size / max|u|): the thickness equation is implicit, but the velocity it
    transports with is the previous step's, so steps much longer than a cell's crossing time oscillate (issue 14)."""
    speed = max_speed(model)
    return dt_max if speed <= 0 else min(dt_max, courant * cell_size / speed)


def advance(model, dt: float, min_dt: float = 1e-3):
    """One step of ``dt`` years; if the velocity solve fails or the thickness becomes non-finite, restore the state
    and try two steps of dt / 2 (recursively, down to ``min_dt``).  Returns the list of StepInfo."""
    from firedrake.exceptions import ConvergenceError

    from icesheet.velocity_solver import PicardConvergenceError

    saved, time_before = model.state_arrays(), model.time
    try:
        info = model.step(dt)
        finite = np.all(np.isfinite(model.thickness.dat.data_ro)) and np.all(np.isfinite(model.velocity.dat.data_ro))
        if not model.mesh.comm.allreduce(bool(finite), op=_min()):
            raise FloatingPointError("thickness or velocity is not finite")
        return [info]
    except (PicardConvergenceError, ConvergenceError, FloatingPointError) as error:
        model.set_state_arrays(saved)
        model.time = time_before
        # New solvers: a failed factorisation can leave PETSc's in a state where every later solve fails, and the
        # velocity solver would otherwise keep using the factorisation of the failed attempt (its warm start, the
        # restored velocity, is the one it converged to last).
        model.reset_solvers()
        if dt / 2 < min_dt:
            raise RuntimeError(f"t = {model.time:g} yr: step failed down to dt = {dt:g} yr: {error}") from error
        log.warning("t = %.2f yr: step of %.3g yr failed (%s); two steps of %.3g yr", model.time, dt, error, dt / 2)
        return advance(model, dt / 2, min_dt) + advance(model, dt / 2, min_dt)


def build(scenario: str, cell_size: float, state: Path | None = None, tolerance: float | None = None,
          overrides: dict | None = None):
    """The scenario's model at ``cell_size``, from ``state`` (an IceModel.save_state file) if given; ``tolerance``
    loosens the Picard tolerances and drops the Newton finish (for runs that are not differentiated); ``overrides``
    sets other scenario keys (``{"section.key": value}``)."""
    from icesheet.scenarios import build_model, scenario_parameters

    overrides = {**(overrides or {}), "mesh.cell_size": cell_size}
    if tolerance is not None:
        overrides.update({"solver.tolerance": tolerance, "solver.residual_tolerance": tolerance,
                          "solver.newton_finish": "off"})
    model = build_model(scenario, scenario_parameters(scenario, overrides=overrides))
    if state is not None:
        model.load_state(state)
    return model


def save(model, path: Path, extra: dict) -> None:
    """``model.save_state`` to ``path`` (written to a temporary name, then renamed: a stop never leaves half a file)
    and ``path.json`` with the model time and ``extra``."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    model.save_state(partial)
    if model.mesh.comm.rank == 0:
        os.replace(partial, path)
        path.with_suffix(".json").write_text(json.dumps({"time": model.time, **extra}, indent=1) + "\n")
    model.mesh.comm.barrier()


def saved_time(path: Path) -> float:
    sidecar = Path(path).with_suffix(".json")
    return float(json.loads(sidecar.read_text())["time"]) if sidecar.is_file() else 0.0


# -- spin-up -------------------------------------------------------------------------------------------------------
def spin_up(cell_size: float, years: float, out: Path, restart: Path | None = None, courant: float = 1.0,
            dt_max: float = 20.0, save_every: float = 500.0, log_every: float = 20.0, tolerance: float = 1e-4,
            dt_start: float = 0.25, overrides: dict | None = None) -> dict:
    """Run Ice0 for ``years`` (from ``restart`` if given) toward steady state; a row of ``spinup.csv`` every
    ``log_every`` years (``vaf_rate``: the VAF change per year since the previous row, ``dt``: the mean step over
    it); ``overrides``: other keys of ``mismip_ice0`` (``{"section.key": value}``); see the module docstring."""
    out.mkdir(parents=True, exist_ok=True)
    model = build("mismip_ice0", cell_size, restart, tolerance, overrides)
    model.time = saved_time(restart) if restart else 0.0
    end, state = model.time + years, out / f"ice0_{cell_size / 1000:g}km.h5"
    log_path = out / "spinup.csv"
    columns = ("time", "dt", "vaf", "volume", "grounded_area", "grounding_line", "vaf_rate", "steps", "picard",
               "seconds")
    rank0 = model.mesh.comm.rank == 0
    append = restart is not None and log_path.is_file()
    handle = open(log_path, "a" if append else "w", newline="") if rank0 else None
    writer = csv.DictWriter(handle, fieldnames=columns) if rank0 else None
    if rank0 and not append:
        writer.writeheader()
    last = diagnostics(model)
    next_log, next_save = model.time + log_every, model.time + save_every
    start = tick = time.perf_counter()
    steps = picard = 0
    record = {}
    ramp = dt_start  # after a (re)start the steps grow from dt_start by RAMP per step up to the Courant limit
    try:
        while model.time < end - 1e-9:
            ramp = min(ramp * RAMP, courant_step(model, cell_size, courant, dt_max))
            dt = min(ramp, end - model.time, next_log - model.time)
            infos = advance(model, dt)
            steps, picard = steps + len(infos), picard + sum(i.picard_iterations for i in infos)
            if model.time < next_log - 1e-9 and model.time < end - 1e-9:
                continue
            now = diagnostics(model)
            record = {**now, "dt": (now["time"] - last["time"]) / steps,
                      "vaf_rate": (now["vaf"] - last["vaf"]) / (now["time"] - last["time"]),
                      "steps": steps, "picard": picard, "seconds": round(time.perf_counter() - tick, 2)}
            if rank0:
                writer.writerow({k: record[k] for k in columns})
                handle.flush()
            last, next_log, steps, picard, tick = now, model.time + log_every, 0, 0, time.perf_counter()
            if model.time >= next_save - 1e-9 or model.time >= end - 1e-9:
                save(model, state, {"cell_size": cell_size, "vaf_rate": record["vaf_rate"],
                                    "grounding_line": now["grounding_line"]})
                next_save = model.time + save_every
                if rank0:
                    log.info("t = %.0f yr: VAF %.5e m^3 (%+.3e m^3/yr), grounded area %.5e m^2, grounding line "
                             "%.1f km, dt %.2f yr, %.0f s so far; saved %s", model.time, now["vaf"], record["vaf_rate"],
                             now["grounded_area"], now["grounding_line"] / 1e3, dt, time.perf_counter() - start, state)
    finally:
        if rank0:
            handle.close()
    return {"state": str(state), **record}


# -- the experiment ------------------------------------------------------------------------------------------------
def sizes(full: bool) -> list[dict]:
    """The resolutions to run, finest first, each from its spin-up state in data/mismip: 4 km by default; 4 and
    8 km (and 2 km if its state is there) with ``--full``."""
    cells = (2000.0, 4000.0, 8000.0) if full else (4000.0,)
    found = [{"cell_size": c, "state": STATES / f"ice0_{c / 1000:g}km.h5", "dt": 2.0} for c in cells]
    return [size for size in found if full is False or size["state"].is_file()]


def run_experiment(scenario: str, size: dict, state: Path, start: float) -> tuple[list[dict], object]:
    """100 years of ``scenario`` from ``state`` starting at time ``start``; returns the per-step diagnostics and the
    final model."""
    model = build(scenario, size["cell_size"], state)
    model.time = start
    records = [diagnostics(model)]
    for _ in range(int(round(YEARS / size["dt"]))):
        advance(model, size["dt"])
        records.append(diagnostics(model))
    return records, model


def figure_series(results: dict, out: Path) -> Path:
    """VAF change, grounded-area change (from the start of Ice0 / Ice1r; Ice1ra continues Ice1r) and centreline
    grounding line against time: ours (lines, one width per resolution) and WAVI's (markers)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    keys = (("vaf", "VAF change (m$^3$)", True), ("grounded_area", "grounded area change (km$^2$)", True),
            ("grounding_line", "centreline grounding line (km)", False))
    colours = dict(zip((e for e, _, _ in EXPERIMENTS), ("C0", "C1", "C2")))
    for ax, (key, ylabel, relative) in zip(axes, keys):
        scale = 1e-6 if key == "grounded_area" else (1e-3 if key == "grounding_line" else 1.0)
        for width, (label, by_experiment) in zip((2.5, 1.5, 0.8), results.items()):
            for experiment, _, _ in EXPERIMENTS:
                records = by_experiment[experiment]
                first = by_experiment["ice1r" if experiment == "ice1ra" else experiment][0][key]
                values = np.array([r[key] for r in records])
                ax.plot([r["time"] for r in records], (values - first if relative else values) * scale, "-",
                        color=colours[experiment], lw=width, label=f"{label} {experiment}")
        for experiment, _, start in EXPERIMENTS:
            for peer, marker in (("WAVI 1 km", "o"), ("WAVI 2 km", "s")):
                series = np.array(PEER[peer][experiment][key])
                first = PEER[peer]["ice1r" if experiment == "ice1ra" else experiment][key][0]
                if experiment == "ice1ra" and relative:  # its output restarts VAF and area at Ice1r's end
                    first += series[0] - PEER[peer]["ice1r"][key][-1]
                ax.plot([start + t for t in PEER_TIMES], (series - first if relative else series) * scale,
                        marker + "--", color=colours[experiment], ms=4, lw=0.7, alpha=0.6,
                        label=f"{peer} {experiment}")
        ax.set_xlabel("time (yr)")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle("MISMIP+ Ice0, Ice1r, Ice1ra: this model (lines) against WAVI (markers; a member of the ensemble "
                 "of Cornford et al. 2020)")
    fig.tight_layout()
    return save_figure(fig, out / "mismip_series.png")


def figure_spinup(out: Path) -> Path | None:
    """VAF and centreline grounding line against spin-up time from the logs saved in data/mismip
    (``spinup_<cell>km.csv``, rows of :func:`spin_up`, and ``spinup_<cell>km_<parameter>.csv``, a restart with the
    thickness update's SUPG parameter named), with WAVI's Ice0 values as horizontal lines."""
    logs = sorted(STATES.glob("spinup_*km*.csv"), key=lambda p: (-float(p.stem.split("_")[1][:-2]), p.stem))
    if not logs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for path in logs:
        with open(path) as handle:
            rows = list(csv.DictReader(handle))
        t = [float(r["time"]) for r in rows]
        label = "ours " + " ".join(path.stem.split("_")[1:])
        axes[0].plot(t, [float(r["vaf"]) for r in rows], lw=1, label=label)
        axes[1].plot(t, [float(r["grounding_line"]) / 1e3 for r in rows], lw=1, label=label)
    for peer, style in (("WAVI 1 km", ":"), ("WAVI 2 km", "--")):
        axes[0].axhline(PEER[peer]["ice0"]["vaf"][0], color="k", ls=style, lw=0.8, label=f"{peer} Ice0")
        axes[1].axhline(PEER[peer]["ice0"]["grounding_line"][0] / 1e3, color="k", ls=style, lw=0.8, label=peer)
    axes[0].set_ylabel("VAF (m$^3$)")
    axes[1].set_ylabel("centreline grounding line (km)")
    axes[1].set_ylim(380, 480)
    for ax in axes:
        ax.set_xlabel("spin-up time (yr)")
    axes[0].legend(fontsize=7)
    fig.suptitle("MISMIP+ Ice0 spin-up from 100 m of ice (finer meshes restart from a coarser state)")
    fig.tight_layout()
    return save_figure(fig, out / "mismip_spinup.png")


def figure_maps(initial, final, out: Path) -> Path:
    """Thickness at t = 0 with the grounding line at t = 0 (white) and after Ice1r (red), and Ice1r's melt at t=0."""
    import firedrake as fd
    from firedrake.pyplot import tricontour, tripcolor

    fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    colours = tripcolor(initial.thickness, axes=axes[0])
    fig.colorbar(colours, ax=axes[0], label="thickness (m)")
    for model, colour in ((initial, "w"), (final, "r")):
        tricontour(grounded_field(model, model.thickness), levels=[0.5], axes=axes[0], colors=colour)
    # DG1: a cell's melt at its own vertices (the "no-partial" treatment switches it off cell by cell)
    melt = fd.Function(fd.FunctionSpace(initial.mesh, "DG", 1)).interpolate(initial.melt_rate)
    colours = tripcolor(melt, axes=axes[1], cmap="magma")
    fig.colorbar(colours, ax=axes[1], label="melt rate (m/yr)")
    axes[0].set_title("spin-up state (white: grounding line at t = 0, red: after 100 years of Ice1r)")
    axes[1].set_title("Ice1 sub-shelf melt at t = 0")
    axes[1].set_xlabel("x (m)")
    for ax in axes:
        ax.set_aspect("auto")
    fig.tight_layout()
    return save_figure(fig, out / "mismip_maps.png")


def run_resolution(size: dict, out: Path) -> tuple[dict, dict]:
    """The three experiments at one resolution; returns their records and final models."""
    if not Path(size["state"]).is_file():
        raise FileNotFoundError(f"spin-up state {size['state']}: not found; make it with `python -m experiments.mismip "
                                f"spinup --cell-size {size['cell_size']:g} --out DIR` and copy DIR/"
                                f"{Path(size['state']).name} and its .json into data/mismip/")
    results, models, finals = {}, {}, {"spin-up": Path(size["state"])}
    tag = f"{size['cell_size'] / 1000:g}km"
    for experiment, origin, start in EXPERIMENTS:
        tick = time.perf_counter()
        results[experiment], models[experiment] = run_experiment(f"mismip_{experiment}", size, finals[origin], start)
        log.info("%s at %s: %d steps in %.1f s", experiment, tag, len(results[experiment]) - 1,
                 time.perf_counter() - tick)
        write_csv(out / f"{experiment}_{tag}.csv", results[experiment])
        finals[experiment] = out / f"{experiment}_{tag}_final.h5"
        save(models[experiment], finals[experiment], {"cell_size": size["cell_size"]})
    return results, models


def summarise(label: str, results: dict, cell_size: float) -> dict:
    ice0, ice1r, ice1ra = results["ice0"], results["ice1r"], results["ice1ra"]
    return {"label": label, "cell_size": cell_size, "ice0_grounding_line": ice0[0]["grounding_line"],
            "ice0_vaf": ice0[0]["vaf"], "ice0_grounded_area": ice0[0]["grounded_area"],
            "ice0_vaf_rate": (ice0[-1]["vaf"] - ice0[0]["vaf"]) / YEARS,
            "ice0_gl_drift": ice0[-1]["grounding_line"] - ice0[0]["grounding_line"],
            "ice1r_retreat": ice1r[0]["grounding_line"] - ice1r[-1]["grounding_line"],
            "ice1r_vaf_loss": ice1r[0]["vaf"] - ice1r[-1]["vaf"],
            "ice1r_grounded_area_loss": ice1r[0]["grounded_area"] - ice1r[-1]["grounded_area"],
            "ice1ra_readvance": ice1ra[-1]["grounding_line"] - ice1ra[0]["grounding_line"]}


def run(out: Path, full: bool) -> dict:
    results, rows, finest = {}, [], None
    for size in sizes(full):
        label = f"ours {size['cell_size'] / 1000:g} km"
        results[label], models = run_resolution(size, out)
        rows.append(summarise(label, results[label], size["cell_size"]))
        if finest is None:
            finest = (size, models)
    for peer, data in PEER.items():
        rows.append(summarise(peer, {e: [dict(zip(data[e], values)) for values in zip(*data[e].values())]
                                     for e in data}, float("nan")))
    write_csv(out / "mismip_summary.csv", rows)
    figure_series(results, out)
    figure_spinup(out)
    size, models = finest
    if models["ice0"].mesh.comm.size == 1:
        figure_maps(build("mismip_ice1r", size["cell_size"], size["state"]), models["ice1r"], out)
    ours, peers = rows[0], rows[len(results):]
    span = {k: (min(p[k] for p in peers), max(p[k] for p in peers)) for k in ours if k not in ("label", "cell_size")}
    ok = bool(abs(ours["ice0_gl_drift"]) < ours["cell_size"] and ours["ice1r_retreat"] > 0
              and ours["ice1r_vaf_loss"] > 0)
    headline = (f"{ours['label']}: Ice0 grounding line at {ours['ice0_grounding_line'] / 1e3:.1f} km on the "
                f"centreline (WAVI {span['ice0_grounding_line'][0] / 1e3:.0f}-"
                f"{span['ice0_grounding_line'][1] / 1e3:.0f}), moving {ours['ice0_gl_drift'] / 1e3:+.1f} km and VAF "
                f"{ours['ice0_vaf_rate']:+.2e} m^3/yr over {YEARS:g} yr; Ice1r retreats "
                f"{ours['ice1r_retreat'] / 1e3:.1f} km (WAVI {span['ice1r_retreat'][0] / 1e3:.0f}-"
                f"{span['ice1r_retreat'][1] / 1e3:.0f}) and loses {ours['ice1r_vaf_loss']:.2e} m^3 of VAF (WAVI "
                f"{span['ice1r_vaf_loss'][0]:.2e}-{span['ice1r_vaf_loss'][1]:.2e})")
    return {"headline": headline, "headline_ok": ok, "rows": rows}


def spinup_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.mismip spinup",
                                     description="MISMIP+ Ice0 spin-up toward steady state (module docstring)")
    parser.add_argument("--cell-size", type=float, default=8000.0, help="m (default %(default)s)")
    parser.add_argument("--years", type=float, default=20000.0, help="model years to run (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the state, its JSON and spinup.csv")
    parser.add_argument("--restart", type=Path, help="a state saved by an earlier spin-up (its .json gives the time)")
    parser.add_argument("--courant", type=float, default=1.0, help="dt <= courant * cell / max|u| (default 1)")
    parser.add_argument("--dt-max", type=float, default=20.0, help="years (default %(default)s)")
    parser.add_argument("--save-every", type=float, default=500.0, help="years between saves (default 500)")
    parser.add_argument("--log-every", type=float, default=20.0, help="years between rows of spinup.csv (20)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="Picard tolerance, no Newton finish (1e-4)")
    parser.add_argument("--supg-parameter",
                        help="the thickness update's SUPG parameter, 'steady' or 'transient' (default: "
                             "mismip_ice0.toml's; the spin-ups before 29 Nov 2026 used 'transient', docs/mismip.md)")
    args = parser.parse_args(argv)
    for name in ("cell_size", "years", "courant", "dt_max", "save_every", "log_every", "tolerance"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            parser.error(f"--{name.replace('_', '-')} = {value!r}: must be a finite number > 0")
    if args.restart is not None and not args.restart.is_file():
        parser.error(f"--restart = {str(args.restart)!r}: no such file")
    overrides = {"solver.supg_parameter": args.supg_parameter} if args.supg_parameter else None
    from icesheet.errors import ScenarioError
    from icesheet.scenarios import scenario_parameters

    try:
        scenario_parameters("mismip_ice0", overrides=overrides)
    except ScenarioError as error:
        parser.error(str(error))
    setup_logging()
    from icesheet.cli import import_firedrake

    import_firedrake()
    result = spin_up(args.cell_size, args.years, args.out, args.restart, args.courant, args.dt_max,
                     args.save_every, args.log_every, args.tolerance, overrides=overrides)
    log.info("spin-up done: %s", result)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["spinup"]:
        raise SystemExit(spinup_main(sys.argv[2:]))
    from icesheet.cli import import_firedrake

    import_firedrake()
    raise SystemExit(main_for(sys.modules[__name__]))
