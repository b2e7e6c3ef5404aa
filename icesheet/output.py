"""Output of the commands: :class:`RunWriter` for ``icesheet run``, :class:`GradientWriter` for ``icesheet gradient``.

Files of a run in its output directory:

- ``fields.pvd`` (+ ``fields/*.vtu``): thickness, surface, velocity and grounded mask over time (firedrake VTKFile);
- ``steps.csv``: per step: step, time (yr), volume and VAF (m^3), Picard and Newton iterations, final relative
  residual, clamped volume (m^3), sub-steps, wall time (s);
- ``final_state.png`` (map of the final thickness with the grounding line, and speed; serial runs only, since
  firedrake.pyplot plots a mesh held on one process), ``volume.png`` (volume and VAF over time),
  ``picard.png`` (Picard iterations per step);
- ``summary.json``: scenario, parameters, final diagnostics, totals, ranks and sizes; ``partial`` is true and
  ``stopped`` says why when the run stopped early (a physics guard, a solver failure, SIGINT or SIGTERM).

The VTK frame and the CSV row of every step are written (and flushed) as soon as the step is done, so a run that
stops, however it stops (even ``kill -9``), keeps every step it computed.

Files of a gradient:

- ``gradient.pvd`` (VTK: the gradient's L2 or H1 Riesz representative and the control field);
- ``gradient.png`` (map of the gradient; serial runs only);
- ``gradient.h5`` (firedrake.CheckpointFile: mesh and gradient Function, for reuse);
- ``summary.json`` (icesheet/gradient_run.py) and ``summary.csv``: J, timings, forward and backward steps, reads,
  writes and peak occupancy per storage tier beside the simulator's prediction, peak RSS.

Before its first write a writer removes the files of these names left by an earlier run (``--out`` was checked
before any work, and held none unless ``--overwrite`` was given: icesheet/outdir.py).
"""
from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

from checkpointing.rundirs import signals_deferred
from icesheet.outdir import clear_earlier_outputs

__all__ = ["RunWriter", "GradientWriter", "CSV_COLUMNS", "GRADIENT_CSV_COLUMNS", "RUN_FILES", "GRADIENT_FILES",
           "vtk_available", "gradient_summary_rows"]

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("step", "time", "volume", "vaf", "picard_iterations", "newton_iterations", "chord_iterations",
               "final_residual", "clamped_volume", "substeps", "wall_time")
#: what a run writes in its output directory (names and patterns, for icesheet/outdir.py)
RUN_FILES = ("steps.csv", "summary.json", "fields.pvd", "fields/fields_*", "final_state.png", "volume.png",
             "picard.png")
#: what a gradient writes in its output directory
GRADIENT_FILES = ("gradient.pvd", "gradient/gradient_*", "gradient.png", "gradient.h5", "summary.json",
                  "summary.csv")


def vtk_available() -> bool:
    """firedrake.output.VTKFile needs the ``vtk`` package (Firedrake does not install it)."""
    import importlib.util

    return importlib.util.find_spec("vtkmodules") is not None


class RunWriter:
    """Writes a run's output: ``on_step`` (given to the time loop) writes the step's VTK frame and CSV row at once;
    ``finish`` writes the summary and plots, for a complete run or (``stopped``) a partial one."""

    def __init__(self, out: Path, vtk_every: int = 1):
        self.out = Path(out)
        self.vtk_every = vtk_every
        self.records: list[dict] = []
        self._vtk = None
        self._csv = None
        self.write_vtk = vtk_available()
        if not self.write_vtk:
            logger.warning("the vtk package is not installed: no VTK output (pip install vtk)")
        self._start = time.perf_counter()

    def on_step(self, model, record: dict) -> None:
        comm = model.mesh.comm
        if not self.records:
            if comm.rank == 0:
                clear_earlier_outputs(self.out, RUN_FILES)  # no stale frame of an earlier run (icesheet/outdir.py)
                self._file = open(self.out / "steps.csv", "w", newline="")
                self._csv = csv.DictWriter(self._file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
                self._csv.writeheader()
            comm.barrier()
            if self.write_vtk:
                import firedrake

                self._vtk = firedrake.output.VTKFile(str(self.out / "fields.pvd"), comm=comm)
        with signals_deferred():  # the row and its count together: the summary counts the rows in steps.csv
            if self._csv is not None:
                self._csv.writerow(record)
                self._file.flush()
            self.records.append(record)
        if self.write_vtk and record["step"] % self.vtk_every == 0:
            self._vtk.write(*model.output_fields().values(), time=record["time"])

    def finish(self, model, scenario: str, parameters: dict, stopped: str | None = None) -> dict:
        """Write the summary and the plots (rank 0); returns the summary.  ``stopped``: why the run ended early."""
        comm = model.mesh.comm
        records = self.records
        if self._csv is not None:
            self._file.close()
            self._csv = None
        summary = {
            "scenario": scenario, "parameters": parameters, "ranks": comm.size,
            "partial": stopped is not None, "stopped": stopped,
            "cells": model.mesh.num_cells() if comm.size == 1 else None,
            "velocity_dofs": model.velocity_space.dim(), "thickness_dofs": model.thickness_space.dim(),
            "steps": len(records) - 1, "steps_requested": parameters["time"]["steps"],
            "final_time": records[-1]["time"] if records else None,
            "initial_volume": records[0]["volume"] if records else None,
            "final_volume": records[-1]["volume"] if records else None,
            "initial_vaf": records[0]["vaf"] if records else None,
            "final_vaf": records[-1]["vaf"] if records else None,
            "total_picard_iterations": sum(r["picard_iterations"] for r in records),
            "total_newton_iterations": sum(r["newton_iterations"] for r in records),
            "total_chord_iterations": sum(r.get("chord_iterations", 0) for r in records),
            "total_substeps": sum(r.get("substeps", 1) for r in records[1:]),
            "max_clamped_fraction": max((r["clamped_volume"] / r["volume"] for r in records[1:]
                                         if r["volume"] > 0), default=0.0),
            "wall_time": time.perf_counter() - self._start, "vtk": self.write_vtk,
        }
        fields = model.output_fields() if comm.size == 1 and records and stopped is None else None
        if comm.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "summary.json", "w") as f:
                json.dump(summary, f, indent=2)
            if len(records) > 1:
                _plot_series(records, self.out)
            if fields is not None:
                _plot_map(fields, self.out / "final_state.png", records[-1]["time"])
        return summary


GRADIENT_CSV_COLUMNS = ("quantity", "measured", "predicted")


class GradientWriter:
    """Writes a gradient's files (module docstring) into ``out``."""

    def __init__(self, out: Path):
        self.out = Path(out)

    def write(self, model, gradient, control, summary: dict) -> None:
        """``gradient``: the Riesz representative (Function); ``control``: the control field; ``summary``: the
        summary dict (written as JSON, and as CSV rows by :func:`gradient_summary_rows`)."""
        import firedrake

        comm = model.mesh.comm
        if comm.rank == 0:
            clear_earlier_outputs(self.out, GRADIENT_FILES)  # no stale file of an earlier gradient
        comm.barrier()
        if vtk_available():
            firedrake.output.VTKFile(str(self.out / "gradient.pvd"), comm=comm).write(gradient, control)
        else:
            logger.warning("the vtk package is not installed: no gradient.pvd")
        with firedrake.CheckpointFile(str(self.out / "gradient.h5"), "w", comm=comm) as h5:
            h5.save_mesh(model.mesh)
            h5.save_function(gradient)
        if comm.size == 1:
            _plot_gradient(gradient, summary, self.out / "gradient.png")
        if comm.rank == 0:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
            with open(self.out / "summary.csv", "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(GRADIENT_CSV_COLUMNS)
                writer.writerows(gradient_summary_rows(summary))


def gradient_summary_rows(summary: dict) -> list[tuple]:
    """Rows ``(quantity, measured, predicted)`` of summary.csv: step counts, per-tier reads/writes/peak, times."""
    measured, predicted = summary["measured"], summary["predicted"]
    rows = [("forward_steps", measured["forward_steps"], predicted["forward_steps"]),
            ("backward_steps", measured["backward_steps"], predicted["backward_steps"])]
    for k, level in enumerate(summary["platform"]["levels"]):
        for what in ("reads", "writes", "peak"):
            rows.append((f"{what}[{level['name']}]", measured[what][k], predicted[what][k]))
    calibration = summary.get("calibration")
    rows.append(("makespan_s", sum(measured["wall_time"].values()),
                 calibration["predicted_makespan"] if calibration else ""))
    rows += [(f"wall_time_{kind}_s", seconds, "") for kind, seconds in measured["wall_time"].items()]
    rows += [("run_wall_time_s", summary["wall_time"], calibration["predicted_run_time"] if calibration else ""),
             ("peak_rss_mb", summary["peak_rss_mb"], "")]
    return rows


def _plot_gradient(field, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from firedrake.pyplot import tripcolor

    fig, ax = plt.subplots(figsize=(10, 3))
    values = field.dat.data_ro
    limit = float(abs(values).max()) or 1.0
    colours = tripcolor(field, axes=ax, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(colours, ax=ax, label=f"{summary['riesz_map']} gradient")
    ax.set(xlabel="x (m)", ylabel="y (m)", aspect="equal",
           title=f"d {summary['functional']} ({summary['when']}) / d {summary['control_function']}, "
                 f"{summary['steps']} steps of {summary['dt']:g} yr")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_series(records: list[dict], out: Path) -> None:
    import matplotlib.pyplot as plt

    t = [r["time"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, [r["volume"] for r in records], "o-", label="volume")
    ax.plot(t, [r["vaf"] for r in records], "s-", label="volume above flotation")
    ax.set_xlabel("time (yr)")
    ax.set_ylabel("m$^3$")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "volume.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [r["step"] for r in records[1:]]
    ax.bar(steps, [r["picard_iterations"] for r in records[1:]], label="Picard")
    ax.bar(steps, [r["newton_iterations"] for r in records[1:]], bottom=[r["picard_iterations"] for r in records[1:]],
           label="Newton")
    ax.bar(steps, [r.get("chord_iterations", 0) for r in records[1:]],
           bottom=[r["picard_iterations"] + r["newton_iterations"] for r in records[1:]], label="chord")
    ax.set_xlabel("time step")
    ax.set_ylabel("iterations")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "picard.png", dpi=120)
    plt.close(fig)


def _plot_map(fields: dict, path: Path, final_time: float) -> None:
    import firedrake
    import matplotlib.pyplot as plt
    from firedrake.pyplot import tricontour, tripcolor

    speed = firedrake.Function(fields["thickness"].function_space(), name="speed")
    speed.interpolate(firedrake.sqrt(firedrake.inner(fields["velocity"], fields["velocity"])))
    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax, f, label in ((axes[0], fields["thickness"], "thickness (m)"), (axes[1], speed, "speed (m/yr)")):
        colours = tripcolor(f, axes=ax)
        fig.colorbar(colours, ax=ax, label=label)
        ax.set_aspect("auto")
        grounded = fields["grounded"].dat.data_ro
        if grounded.min() < 0.5 < grounded.max():
            tricontour(fields["grounded"], levels=[0.5], axes=ax, colors="w")
    axes[0].set_title(f"final state, t = {final_time:g} yr (white: grounding line)")
    axes[1].set_xlabel("x (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
