"""MISMIP+ Ice1r in the time step and the mesh: VAF lost and grounding line for each treatment of the melt there.

Ice1r (Asay-Davis et al. 2016, GMD 9, 2471; docs/mismip.md) from the 4 km Ice0 state ``data/mismip/ice0_4km.h5``
(and, with ``--full``, from that state interpolated onto 2 km and relaxed under Ice0 as the flagship gradient does,
experiments/mismip_flagship.py), run forward without taping for each case: a treatment of the melt in cells the
grounding line crosses (icesheet.melt.GROUNDING_LINE_MELT: ``"sub-element"``, ``"no-partial"``), a cell size, and a
time step, fixed or ``"adaptive"`` (half the stable step of icesheet/stability.py at the state each step starts
from, as experiments/mismip_online.py takes them).  Recorded every year (``DIR/runs/<case>.csv``): VAF lost, grounded
area, centreline grounding line (experiments/mismip.py), the stable time step, and per year the steps taken, steps
that failed and were split (experiments.mismip.advance), Newton and Picard iterations, the largest final residual,
the volume added by the thickness clamp, the volume melted and the part of it melted in cells with a grounded vertex
(which the ``"no-partial"`` treatment withholds).  The table (``DIR/mismip_convergence.csv`` and ``.md``) gives VAF
lost and grounding line at 20, 30, 40, 60 and 100 years beside WAVI's (data/mismip/peer_wavi.json); the figure the VAF
lost and grounding line against time, over the range of the MISMIP+ ensemble's Ice1r runs (Cornford et al. 2020,
data/mismip/ensemble_cornford2020.json).  ``figure(saved_results(RUNS), OUT)`` redraws it from saved runs.

Default: the MISMIP+ scenario as it is, 4 km, 40 years, steps of 0.5 and 0.1 years, both treatments (a few
minutes; with 2-year steps the sub-element melt loses 15 % less in 40 years than with 0.5-year ones, 4.96e11
against 5.81e11 m^3).  ``--full``: the scenario as it is for 100 years, at 4 km with steps of 2, 0.5, 0.1 and 0.05
years and at 2 km with 0.5 and 0.1 years, both treatments; then the study as it was run before 29 Nov 2026, with the
thickness update's transient SUPG parameter (``solver.supg_parameter = "transient"``, icesheet.transport) from the
spin-up made with it (``data/mismip/ice0_4km_transient.h5``), each case pinning both (:func:`transient_grid`): 100
years at 4 km with steps of 2, 0.5, 0.1, 0.05 years and adaptive, 40 years at 4 km with steps of 0.025 years, 100
years at 2 km with 2, 0.5 and 0.1 years (0.1 years only with no-partial: sub-element's is the flagship gradient's
runs 1-2), a solver-tolerance probe (0.1-year steps for 30 years with the Newton tolerance 100 times tighter), two
lag probes (:func:`lagged_stepper`: 0.05-year steps for 40 years with the velocity solved, or the melt evaluated,
only every other step), and both treatments with the steady SUPG parameter from the same start at 4 km, 0.1- and
0.5-year steps, 100 years (:func:`figure_supg` draws them against the transient one).  A case whose CSV is complete
is read back instead of run again, so an interrupted ``--full`` run resumes where it stopped
(data/mismip/convergence/runs holds every case's CSV).

Headline check: the MISMIP+ scenarios' treatment (``physics.melt_at_grounding_line`` of mismip_ice1r.toml) loses,
at the end, VAF within 10 % between the two shortest fixed steps run at 4 km.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .harness import main_for, plt, save_figure, write_csv
from .mismip import PEER, PEER_TIMES, SSA_WEERTMAN, STATES, advance, build, diagnostics, ensemble_values

NAME = "mismip_convergence"
log = logging.getLogger(f"experiments.{NAME}")

TREATMENTS = ("no-partial", "sub-element")  # icesheet.melt.GROUNDING_LINE_MELT
REPORT_TIMES = (20.0, 30.0, 40.0, 60.0, 100.0)  # yr
ADAPTIVE_FRACTION = 0.5  # of the stable step (icesheet.stability.AdaptiveTimesteps), as experiments/mismip_online
TOLERANCE = 0.10  # the headline's relative change of the VAF lost between the two shortest fixed steps
GL_MARK = 440e3  # m: the table gives the first year the centreline grounding line is upstream of it
RELAX_YEARS = 200.0  # the 2 km start: as experiments/mismip_flagship.py


@dataclass(frozen=True)
class Case:
    """One forward run: ``dt`` in years or ``"adaptive"``; ``solver`` overrides of the scenario's keys; ``spinup``
    the 4 km state it starts from, a key of :data:`SPINUPS`."""

    treatment: str
    cell_size: float
    dt: float | str
    years: float
    solver: tuple = ()
    velocity_every: int = 1
    melt_every: int = 1
    spinup: str = "steady"

    def differences(self) -> list[tuple[str, str]]:
        """(key, value) of each setting that differs from a plain run, in the order :attr:`tag` and :attr:`label`
        name them (a value "" for a setting named by its key alone)."""
        pairs = [(k.split(".")[-1], _value(v)) for k, v in self.solver]
        pairs += [(name, str(k)) for name, k in (("velocity-every", self.velocity_every),
                                                 ("melt-every", self.melt_every)) if k > 1]
        return pairs + ([(f"{self.spinup}-spinup", "")] if self.spinup != "steady" else [])

    @property
    def tag(self) -> str:
        dt = self.dt if isinstance(self.dt, str) else f"dt{self.dt:g}"
        extra = "".join(f"_{k}{v}" for k, v in self.differences())
        return f"{self.treatment}_{self.cell_size / 1000:g}km_{dt}_{self.years:g}yr{extra}"

    @property
    def lagged(self) -> bool:
        return self.velocity_every > 1 or self.melt_every > 1

    @property
    def label(self) -> str:
        """The treatment and what else differs from a plain run."""
        extra = [f"{k}={v}" if v else k for k, v in self.differences()]
        return self.treatment + (f" ({', '.join(extra)})" if extra else "")

    @property
    def default_settings(self) -> bool:
        """Whether the case runs the MISMIP+ scenario as it is (only the melt treatment and the step chosen)."""
        return not self.solver and not self.lagged and self.spinup == "steady"


def _value(value) -> str:
    return value if isinstance(value, str) else f"{value:g}"


#: the thickness update's SUPG parameters (icesheet.transport; docs/mismip.md, "Why Ice1r responds slowly"): the
#: step-independent one, the MISMIP+ default since 29 Nov 2026, and the one that shrinks with the step, the default
#: before, pinned by the cases run with it
STEADY_SUPG = (("solver.supg_parameter", "steady"),)
TRANSIENT_SUPG = (("solver.supg_parameter", "transient"),)
#: the 4 km Ice0 states a case can start from: the spin-up under the MISMIP+ scenario as it is, and the spin-up
#: made with the transient SUPG parameter (the start of every run of this study before 29 Nov 2026)
SPINUPS = {"steady": STATES / "ice0_4km.h5", "transient": STATES / "ice0_4km_transient.h5"}


def transient_grid() -> list[Case]:
    """The study as run with the transient SUPG parameter from its spin-up (before 29 Nov 2026; its runs are in
    data/mismip/convergence/runs), in the order it was run, each case pinning those settings."""
    def case(treatment, cell_size, dt, years, solver=TRANSIENT_SUPG, **lags) -> Case:
        return Case(treatment, cell_size, dt, years, solver, spinup="transient", **lags)

    grid = [case(t, 4000.0, dt, 100.0) for dt in (2.0, 0.5, 0.1, "adaptive", 0.05) for t in TREATMENTS]
    # which lag of the 0.1-year step makes its difference from 0.05: the velocity's or the melt's
    grid += [case("sub-element", 4000.0, 0.05, 40.0, velocity_every=2),
             case("sub-element", 4000.0, 0.05, 40.0, melt_every=2)]
    grid += [case("sub-element", 4000.0, 0.025, 40.0),
             case("sub-element", 4000.0, 0.1, 30.0, TRANSIENT_SUPG + (("solver.newton_tolerance", 1e-12),))]
    # 2 km: no-partial first (a 2 km step costs about 4 times a 4 km one)
    grid += [case("no-partial", 2000.0, dt, 100.0) for dt in (0.5, 0.1, 2.0)]
    grid += [case("no-partial", 2000.0, 0.05, 40.0), case("sub-element", 2000.0, 0.5, 100.0),
             case("sub-element", 2000.0, 2.0, 100.0)]
    grid += [case(t, 2000.0, "adaptive", 100.0) for t in TREATMENTS]
    # (sub-element at 2 km with 0.1-year steps is not a case: the flagship gradient's runs 1-2 made it,
    # experiments/mismip_flagship.py, docs/mismip.md)
    grid += [case("no-partial", 4000.0, 0.025, 40.0)]
    # the SUPG parameter that does not vanish with the step, from the same start
    grid += [case(t, 4000.0, 0.1, 100.0, STEADY_SUPG) for t in TREATMENTS]
    grid += [case(t, 4000.0, 0.5, 100.0, STEADY_SUPG) for t in TREATMENTS]
    return grid


def cases(full: bool) -> list[Case]:
    """The grid, in the order of what it tells (a stopped run keeps the cases done): the MISMIP+ scenario as it is
    (steady SUPG parameter, from its spin-up) for both treatments, then, with ``full``, the study made with the
    transient SUPG parameter (:func:`transient_grid`)."""
    if not full:
        return [Case(t, 4000.0, dt, 40.0) for dt in (0.5, 0.1) for t in TREATMENTS]
    grid = [Case(t, 4000.0, dt, 100.0) for dt in (2.0, 0.5, 0.1) for t in TREATMENTS]
    # 2 km: the scenario's treatment first (a 2 km step costs about 4 times a 4 km one)
    grid += [Case(t, 2000.0, dt, 100.0) for t in ("sub-element", "no-partial") for dt in (0.5, 0.1)]
    grid += [Case(t, 4000.0, 0.05, 100.0) for t in TREATMENTS]
    return grid + transient_grid()


@dataclass
class YearTally:
    """Per-step quantities summed or maximised between two records."""

    steps: int = 0
    failed: int = 0
    newton_max: int = 0
    picard_max: int = 0
    residual_max: float = 0.0
    clamped: float = 0.0
    melted: float = 0.0
    melted_partial: float = 0.0
    dts: list = field(default_factory=list)


def initial_state(case: Case, out: Path) -> Path:
    """The case's 4 km spin-up state, or at 2 km that state interpolated and relaxed under Ice0 with the case's
    solver keys (experiments/mismip_flagship.py)."""
    source = SPINUPS[case.spinup]
    if case.cell_size == 4000.0:
        return source
    from .mismip_flagship import initial_state as relaxed

    supg = tuple((k, v) for k, v in case.solver if k == "solver.supg_parameter")
    suffix = f"_{case.spinup}-spinup" if case.spinup != "steady" else ""
    size = {"cell_size": case.cell_size, "relax_years": RELAX_YEARS, "source": source, "overrides": dict(supg)}
    state, drift = relaxed(size, out / f"relax_{case.cell_size / 1000:g}km{suffix}")
    log.info("start state at %g km: %s (%s)", case.cell_size / 1000, state, drift)
    return state


def run_case(case: Case, out: Path, progress: bool = True) -> list[dict]:
    """Run ``case`` (untaped) from its initial state; rows every year (see the module docstring), also written to
    ``out/runs/<tag>.csv``.  A complete CSV from an earlier run is read back instead."""
    import firedrake as fd
    from pyadjoint import stop_annotating
    from tqdm.auto import tqdm

    from icesheet.melt import FloatingCells
    from icesheet.stability import time_step_limit

    rows = saved_rows(case, out / "runs")
    if rows:
        log.info("%s: read back from %s", case.tag, out / "runs")
        return rows
    path = out / "runs" / f"{case.tag}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = initial_state(case, out)
    model = build("mismip_ice1r", case.cell_size, state, overrides={"physics.melt_at_grounding_line": case.treatment,
                                                                    **dict(case.solver)})
    model.time = 0.0
    cells = model.floating_cells or FloatingCells(model.thickness, model.bed, rho_water=model.water_density)
    quadrature = fd.dx(metadata={"quadrature_degree": 4})  # the thickness solver's rule for degree 1
    step, melt_rate = (lagged_stepper(model, case) if case.lagged
                       else ((lambda dt: advance(model, dt)), model.melt_rate))
    melt_form = melt_rate * quadrature
    partial_form = melt_rate * (1 - cells.cells) * quadrature
    start_vaf = model.volume_above_flotation()
    rows = [record(model, start_vaf, YearTally(), 0.0)]
    tally, cpu, next_record = YearTally(), time.process_time(), 1.0
    with stop_annotating(), tqdm(total=case.years, desc=case.tag, unit="yr", disable=not progress,
                                 bar_format="{l_bar}{bar}| {n:.1f}/{total:g} yr [{elapsed}<{remaining}]") as bar:
        while model.time < case.years - 1e-9:
            if case.dt == "adaptive":  # AdaptiveTimesteps' rule, with steps cut at the record times
                dt = min(ADAPTIVE_FRACTION * time_step_limit(model).dt, next_record - model.time)
            else:  # fixed steps are not cut: a row is recorded after the first step reaching each whole year
                dt = min(case.dt, case.years - model.time)
            cells.update()
            melted = fd.assemble(melt_form)
            partial = fd.assemble(partial_form)
            before = model.time
            infos = step(dt)
            tally.steps += 1
            tally.failed += len(infos) > 1
            tally.newton_max = max([tally.newton_max] + [i.newton_iterations for i in infos])
            tally.picard_max = max([tally.picard_max] + [i.picard_iterations for i in infos])
            tally.residual_max = max([tally.residual_max] + [i.final_residual for i in infos])
            tally.clamped += sum(i.clamped_volume for i in infos)
            tally.melted += dt * melted
            tally.melted_partial += dt * partial
            tally.dts.append(dt)
            bar.update(model.time - before)
            if model.time >= next_record - 1e-9:
                rows.append(record(model, start_vaf, tally, time.process_time() - cpu, time_step_limit(model).dt))
                tally, next_record = YearTally(), math.floor(model.time + 1e-9) + 1.0
    write_csv(path, rows)
    last = rows[-1]
    log.info("%s: VAF lost %.3e m^3, grounding line %.1f km, %d steps (%d split), %.0f s CPU", case.tag,
             last["vaf_lost"], last["grounding_line"] / 1e3, sum(r["steps"] for r in rows),
             sum(r["failed_steps"] for r in rows), last["cpu_seconds"])
    return rows


def lagged_stepper(model, case: Case):
    """A step of ``model`` (the "sub-element" treatment) whose velocity is solved only every ``case.velocity_every``
    steps and whose melt is evaluated at the thickness of every ``case.melt_every``-th step (the other parts of the
    step as ``IceModel.step``): with the short step of a fine run and the lag of a longer one in one of the two, it
    tells which lag makes the difference between the two.  Returns the step function and the melt rate it applies."""
    import types

    import firedrake as fd
    import ufl


    if model.floating_cells is not None:
        raise ValueError(f"{case.tag}: lagged steps are implemented for the sub-element treatment only")
    frozen = fd.Function(model.thickness_space, name="melt_thickness")
    melt_rate = ufl.replace(model.melt_rate, {model.thickness: frozen})
    model.thickness_solver = model.thickness_solver_for(mass_balance=model.accumulation - melt_rate)
    count = [0]

    def step(dt: float) -> list:
        velocity = None
        if count[0] % case.velocity_every == 0:
            velocity = model.velocity_solver.solve()
        if count[0] % case.melt_every == 0:
            frozen.assign(model.thickness)
        clamped = model.thickness_solver.solve(dt)
        model.time += dt
        count[0] += 1
        return [types.SimpleNamespace(newton_iterations=velocity.newton_iterations if velocity else 0,
                                      picard_iterations=velocity.picard_iterations if velocity else 0,
                                      final_residual=velocity.final_residual if velocity else 0.0,
                                      clamped_volume=clamped)]

    frozen.assign(model.thickness)
    return step, melt_rate


def record(model, start_vaf: float, tally: YearTally, cpu: float, dt_stable: float = math.nan) -> dict:
    """One row of a run's CSV: the state's diagnostics (experiments.mismip.diagnostics) and the steps' tally."""
    state = diagnostics(model)
    return {"time": round(model.time, 9), "vaf_lost": start_vaf - state["vaf"], "grounded_area": state["grounded_area"],
            "grounding_line": state["grounding_line"], "dt_stable": dt_stable, "steps": tally.steps,
            "dt_min": min(tally.dts, default=math.nan), "dt_max": max(tally.dts, default=math.nan),
            "failed_steps": tally.failed, "newton_max": tally.newton_max, "picard_max": tally.picard_max,
            "residual_max": tally.residual_max, "clamped_volume": tally.clamped, "melted": tally.melted,
            "melted_partial_cells": tally.melted_partial, "cpu_seconds": round(cpu, 2)}


def saved_rows(case: Case, runs: Path) -> list[dict] | None:
    """The rows of ``case`` in ``runs/<tag>.csv`` if that run reached its end, else None."""
    path = runs / f"{case.tag}.csv"
    if path.is_file():
        rows = read_rows(path)
        if rows and rows[-1]["time"] >= case.years - 1e-6:
            return rows
    return None


def saved_results(runs: Path, full: bool = True) -> dict:
    """{case: rows} for the cases of :func:`cases` complete in ``runs`` (an invocation's ``DIR/runs``, or
    data/mismip/convergence/runs): the figure again without running, ``figure(saved_results(runs), out)``."""
    return {case: rows for case in cases(full) if (rows := saved_rows(case, runs))}


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def at(rows: list[dict], t: float, key: str) -> float:
    """``key`` of the row at time ``t`` (nan if the run is shorter)."""
    for row in rows:
        if abs(row["time"] - t) < 1e-6:
            return row[key]
    return math.nan


def peer_at(peer: str, key: str, t: float) -> float:
    """WAVI's Ice1r ``key`` at ``t`` years (its output every 10 years): the VAF lost since t = 0, or the value."""
    series = PEER[peer]["ice1r"][key]
    value = series[PEER_TIMES.index(t)] if t in PEER_TIMES else math.nan
    return series[0] - value if key == "vaf" else value


def table(results: dict) -> list[dict]:
    """One row per case (and WAVI's), the VAF lost and centreline grounding line at :data:`REPORT_TIMES`, and the
    per-run totals of the audit columns."""
    rows = []
    for case, records in results.items():
        row = {"treatment": case.label, "cell_km": case.cell_size / 1000,
               "dt": case.dt if isinstance(case.dt, str) else f"{case.dt:g}"}
        row.update({f"vaf_lost_{t:g}": at(records, t, "vaf_lost") for t in REPORT_TIMES})
        row.update({f"gl_km_{t:g}": at(records, t, "grounding_line") / 1e3 for t in REPORT_TIMES})
        melted = sum(r["melted"] for r in records)
        row.update({"steps": int(sum(r["steps"] for r in records)),
                    "failed_steps": int(sum(r["failed_steps"] for r in records)),
                    "newton_max": int(max(r["newton_max"] for r in records)),
                    "clamped_volume": sum(r["clamped_volume"] for r in records), "melted": melted,
                    "partial_cell_fraction": (sum(r["melted_partial_cells"] for r in records) / melted
                                              if melted else 0.0),
                    "dt_stable_min": float(np.nanmin([r["dt_stable"] for r in records[1:]])),
                    "t_gl_440": next((r["time"] for r in records if r["grounding_line"] < GL_MARK), math.nan),
                    "cpu_seconds": records[-1]["cpu_seconds"]})
        rows.append(row)
    for peer in PEER:
        row = {"treatment": peer, "cell_km": float(peer.split()[1]), "dt": ""}
        row.update({f"vaf_lost_{t:g}": peer_at(peer, "vaf", t) for t in REPORT_TIMES})
        row.update({f"gl_km_{t:g}": peer_at(peer, "grounding_line", t) / 1e3 for t in REPORT_TIMES})
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """The table of :func:`table` as Markdown (VAF lost in 1e11 m^3 and grounding line in km, then the audit)."""
    head = ("| treatment | cell | dt (yr) | " + " | ".join(f"VAF lost {t:g} yr" for t in REPORT_TIMES)
            + " | " + " | ".join(f"GL {t:g} yr" for t in REPORT_TIMES)
            + f" | GL < {GL_MARK / 1e3:g} km at (yr) | steps (split) | clamped m^3 | melt in partly grounded cells "
            "| min stable dt (yr) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        label = r["treatment"]
        vaf = " | ".join("" if math.isnan(r[f"vaf_lost_{t:g}"]) else f"{r[f'vaf_lost_{t:g}'] / 1e11:.2f}"
                         for t in REPORT_TIMES)
        gl = " | ".join("" if math.isnan(r[f"gl_km_{t:g}"]) else f"{r[f'gl_km_{t:g}']:.1f}" for t in REPORT_TIMES)
        audit = (f"{'' if math.isnan(r['t_gl_440']) else format(r['t_gl_440'], 'g')} | {r['steps']} "
                 f"({r['failed_steps']}) | {r['clamped_volume']:.2g} | {r['partial_cell_fraction']:.1%} "
                 f"| {r['dt_stable_min']:.2f}" if "steps" in r else " | | | |")
        lines.append(f"| {label} | {r['cell_km']:g} km | {r['dt']} | {vaf} | {gl} | {audit} |")
    return "\n".join(lines) + "\n\nVAF lost in 1e11 m^3, grounding line (GL) on the centreline in km.\n"


def figure(results: dict, out: Path) -> Path:
    """VAF lost and centreline grounding line against time for the cases with the scenario's settings
    (``Case.default_settings``): one colour per time step, solid lines for
    ``"no-partial"``, dashed for ``"sub-element"``, thick for 4 km and thin for 2 km; WAVI's as markers; grey bands:
    the range of the MISMIP+ ensemble's Ice1r runs, all members and those with SSA stresses and Weertman friction
    (:func:`ensemble_band`)."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    drawn = {case: rows for case, rows in results.items() if case.default_settings}
    steps = sorted({str(c.dt) for c in drawn}, key=lambda s: (s == "adaptive", -float(s) if s != "adaptive" else 0))
    colours = {s: f"C{i}" for i, s in enumerate(steps)}
    for case, rows in drawn.items():
        t = [r["time"] for r in rows]
        style = {"color": colours[str(case.dt)], "ls": "-" if case.treatment == "no-partial" else "--",
                 "lw": 2.0 if case.cell_size == 4000.0 else 0.9}
        label = f"{case.treatment} {case.cell_size / 1000:g} km dt {case.dt}"
        axes[0].plot(t, [r["vaf_lost"] for r in rows], label=label, **style)
        axes[1].plot(t, [r["grounding_line"] / 1e3 for r in rows], **style)
    for peer, marker in (("WAVI 1 km", "o"), ("WAVI 2 km", "s")):
        axes[0].plot(PEER_TIMES, [peer_at(peer, "vaf", t) for t in PEER_TIMES], "k" + marker, ms=4, label=peer)
        axes[1].plot(PEER_TIMES, [peer_at(peer, "grounding_line", t) / 1e3 for t in PEER_TIMES], "k" + marker, ms=4)
    ensemble_axes(axes)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle("MISMIP+ Ice1r: time step, mesh and melt at the grounding line (solid: no-partial, dashed: "
                 "sub-element)")
    fig.tight_layout()
    return save_figure(fig, out / "mismip_convergence.png")


def figure_supg(results: dict, out: Path) -> Path:
    """VAF lost and centreline grounding line against time at 4 km with 0.1-year steps from the transient SUPG
    parameter's spin-up, that parameter (thin) against the steady one (thick), solid for ``"no-partial"``, dashed for
    ``"sub-element"``, over the grey bands of :func:`figure` (docs/mismip.md, "Why Ice1r responds slowly")."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    for case, rows in results.items():
        if case.cell_size != 4000.0 or case.dt != 0.1 or case.lagged or case.years < 100 or (
                case.spinup != "transient" or case.solver not in (STEADY_SUPG, TRANSIENT_SUPG)):
            continue
        t = [r["time"] for r in rows]
        steady = case.solver == STEADY_SUPG
        style = {"color": "C1" if steady else "C0", "ls": "-" if case.treatment == "no-partial" else "--",
                 "lw": 2.0 if steady else 1.0}
        label = f"{case.treatment}, {'steady' if steady else 'transient'} SUPG parameter"
        axes[0].plot(t, [r["vaf_lost"] for r in rows], label=label, **style)
        axes[1].plot(t, [r["grounding_line"] / 1e3 for r in rows], **style)
    ensemble_axes(axes)
    axes[0].legend(fontsize=7)
    fig.suptitle("MISMIP+ Ice1r at 4 km, 0.1-year steps: the thickness update's SUPG parameter")
    fig.tight_layout()
    return save_figure(fig, out / "mismip_supg.png")


def ensemble_axes(axes) -> None:
    """The grey bands of the MISMIP+ ensemble (all members, and the SSA + Weertman ones) on the VAF-lost and
    grounding-line axes of :func:`figure` and :func:`figure_supg`, and those axes' labels."""
    for (low, high), alpha, label in ((ensemble_band({}), 0.1, "MISMIP+ ensemble, all members"),
                                      (ensemble_band(SSA_WEERTMAN), 0.25,
                                       "MISMIP+ ensemble, SSA + Weertman")):
        for ax, key, scale in ((axes[0], "vaf", 1.0), (axes[1], "grounding_line", 1e-3)):
            ax.fill_between(PEER_TIMES, low[key] * scale, high[key] * scale, color="k", alpha=alpha, lw=0,
                            label=label if key == "vaf" else None)
    axes[0].set_ylabel("VAF lost (m$^3$)")
    axes[1].set_ylabel("centreline grounding line (km)")
    for ax in axes:
        ax.set_xlabel("time (yr)")


def ensemble_band(members: dict) -> tuple[dict, dict]:
    """Lowest and highest VAF lost (m^3) and centreline grounding line (m) at :data:`PEER_TIMES` over the MISMIP+
    ensemble's Ice1r runs (Cornford et al. 2020, data/mismip/ensemble_cornford2020.json) selected by ``members``
    (keywords of experiments.mismip.ensemble_values)."""
    start = ensemble_values("ice1r", "vaf", 0.0, **members)
    vaf_lost = [[start[m] - v for m, v in ensemble_values("ice1r", "vaf", t, **members).items()] for t in PEER_TIMES]
    gl = [list(ensemble_values("ice1r", "grounding_line", t, **members).values()) for t in PEER_TIMES]
    return ({"vaf": np.array([min(v) for v in vaf_lost]), "grounding_line": np.array([min(g) for g in gl])},
            {"vaf": np.array([max(v) for v in vaf_lost]), "grounding_line": np.array([max(g) for g in gl])})


def default_treatment() -> str:
    from icesheet.scenarios import scenario_parameters

    return scenario_parameters("mismip_ice1r")["physics"]["melt_at_grounding_line"]


def run(out: Path, full: bool) -> dict:
    load_start = os.getloadavg()
    log.info("load average at the start: %.1f %.1f %.1f", *load_start)
    results = {}
    for case in cases(full):
        results[case] = run_case(case, out)
    rows = table(results)
    write_csv(out / "mismip_convergence.csv", rows)
    load_end = os.getloadavg()
    text = markdown(rows) + (f"Load average (1 min) {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end "
                             "of this invocation (runs read back from earlier invocations keep their CPU time).\n")
    (out / f"{NAME}.md").write_text(text)
    figure(results, out)
    figure_supg(results, out)
    log.info("load average at the end: %.1f %.1f %.1f", *load_end)
    chosen = default_treatment()
    years = max(c.years for c in results)
    fixed = sorted((c for c in results if c.treatment == chosen and c.cell_size == 4000.0 and c.default_settings
                    and not isinstance(c.dt, str) and c.years == years), key=lambda c: c.dt)
    finest, next_finest = (results[c][-1]["vaf_lost"] for c in fixed[:2])
    change = abs(finest - next_finest) / abs(next_finest)
    headline = (f"{chosen} (the MISMIP+ default) at 4 km: VAF lost after {years:g} yr {next_finest:.3e} m^3 at dt "
                f"{fixed[1].dt:g} yr, {finest:.3e} at dt {fixed[0].dt:g} yr ({change:.1%} apart; WAVI 1 and 2 km: "
                f"{peer_at('WAVI 1 km', 'vaf', years):.3e}, {peer_at('WAVI 2 km', 'vaf', years):.3e}); "
                + "; ".join(f"{c.treatment} dt {c.dt}: {results[c][-1]['vaf_lost']:.3e}" for c in results
                            if c.cell_size == 4000.0 and c.default_settings and c.treatment != chosen
                            and c.years == years))
    return {"headline": headline, "headline_ok": change <= TOLERANCE, "rows": rows,
            "load_average": [load_start[0], load_end[0]]}


if __name__ == "__main__":
    import sys

    from icesheet.cli import import_firedrake

    import_firedrake()
    raise SystemExit(main_for(sys.modules[__name__]))
