"""Sensitivity maps: gradients of ice volume and volume above flotation after T years on the marine ice stream.

For ``J = V(h_l)`` (volume, ``int h dx``) and ``J = VAF(h_l)`` (docs/model.md, section 3) after ``l`` steps, the
checkpoint manager gives ``dJ/dtheta`` (log friction, ``C = exp(theta)``), ``dJ/da`` (accumulation) and
``dJ/dh_0`` (initial thickness; ``xbar_0``) in one adjoint sweep per functional.  Those derivatives are cofunctions
(``dJ/dp . phi_j``); the maps show their L2 Riesz representatives ``g`` (``int g phi_j = dJ/dp . phi_j``), i.e.
sensitivity densities per square metre: m^3 per unit log-friction per m^2, m^3 per (m/yr) per m^2, m^3 per m per m^2.

Headline (a Taylor test per control, docs/model.md section 6): for a smooth direction ``h`` the remainder
``|J(p + eps h) - J(p) - eps dJ.h|`` falls at least like ``eps^1.8`` (first-order would be ``eps^1``), for both
functionals and all three controls; and far upstream of the grounding line, where ice only moves slowly, mass
conservation gives ``dV/da ~ T`` (accumulation added for ``T`` years stays) and ``dV/dh_0 ~ 1`` (within 10 %).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import firedrake as fd
import numpy as np
from pyadjoint import stop_annotating

from checkpointing.adjoint import gradient
from checkpointing.platform import Level, Platform
from icesheet.controls import riesz_representative, time_loop
from icesheet.functionals import build_functional, density

from .harness import main_for, plt, save_figure, write_csv
from .ice_problem import IceProblem, build_problem, grounded_mask

NAME = "sensitivity_maps"
log = logging.getLogger(f"experiments.{NAME}")

SLOTS = 3
EPSILONS = (4e-2, 2e-2, 1e-2)
ORDER_GOAL = 1.8
CONTROLS = ("log_friction", "accumulation", "initial_thickness")


def sizes(full: bool) -> dict:
    return {"problem": IceProblem(cell_size=8000.0, steps=20)} if full else \
        {"problem": IceProblem(cell_size=20000.0, steps=10)}


class Sensitivities:
    """Volume and VAF after ``l`` steps as functionals of log friction, accumulation and initial thickness."""

    def __init__(self, problem: IceProblem):
        self.problem = problem
        self.model = model = build_problem(problem)
        self.initial_state = [f.copy(deepcopy=True) for f in model.state]
        self.grounded = grounded_mask(model)
        self.forms = {name: density(model, name) * fd.dx for name in ("volume", "vaf")}
        self.platform = Platform((Level(SLOTS, name="ram"),), name=f"ram{SLOTS}")
        x, y = fd.SpatialCoordinate(model.mesh)
        width = model.mesh.coordinates.dat.data_ro[:, 1].max()
        bump = fd.exp(-((x - 250e3) / 100e3) ** 2 - ((y - width / 2) / 30e3) ** 2)
        space = model.thickness_space
        with stop_annotating():  # directions of the Taylor tests: log friction, m/yr, m
            self.directions = {"log_friction": fd.Function(space).interpolate(bump),
                               "accumulation": fd.Function(space).interpolate(0.5 * bump),
                               "initial_thickness": fd.Function(space).interpolate(50.0 * bump)}

    def fields(self) -> dict:
        m = self.model
        return {"log_friction": m.log_friction, "accumulation": m.accumulation, "initial_thickness": m.thickness}

    def gradient(self, name: str) -> dict:
        """The three derivatives of functional ``name`` as cofunctions, and ``J``."""
        functional = build_functional(self.model, name, self.problem.steps)
        loop = time_loop(self.model, functional, self.problem.timesteps, ("friction", "accumulation"))
        result = gradient(loop, "revolve", self.platform)
        thickness_bar, velocity_bar = result.initial_state_gradient
        return {"J": result.value, "log_friction": result.gradient[0], "accumulation": result.gradient[1],
                "initial_thickness": thickness_bar, "velocity_bar_norm": float(velocity_bar.dat.norm),
                "forward_steps": result.counters.forward_steps}

    def evaluate(self, control: str, eps: float) -> dict:
        """Both functionals after ``l`` untaped steps with ``control`` perturbed by ``eps * direction``."""
        model, field = self.model, self.fields()[control]
        with stop_annotating():
            for f, g in zip(model.state, self.initial_state):
                f.assign(g)
            saved = field.copy(deepcopy=True)
            field.assign(saved + eps * self.directions[control])
            for dt in self.problem.timesteps:
                model.step(dt)
            values = {name: float(fd.assemble(form)) for name, form in self.forms.items()}
            field.assign(saved)
            for f, g in zip(model.state, self.initial_state):
                f.assign(g)
        return values


def taylor_rows(sens: Sensitivities, gradients: dict) -> list[dict]:
    """Remainders ``|J(p + eps h) - J(p) - eps dJ.h|`` and their observed orders, per functional and control."""
    base = sens.evaluate("accumulation", 0.0)
    rows = []
    for control in CONTROLS:
        perturbed = {eps: sens.evaluate(control, eps) for eps in EPSILONS}
        for name in sens.forms:
            slope = float(gradients[name][control].dat.inner(sens.directions[control].dat))
            previous = None
            for eps in EPSILONS:
                remainder = abs(perturbed[eps][name] - base[name] - eps * slope)
                order = np.log(previous / remainder) / np.log(2) if previous else np.nan
                rows.append({"functional": name, "control": control, "eps": eps, "J": base[name],
                             "dJ_h": slope, "remainder_no_gradient": abs(perturbed[eps][name] - base[name]),
                             "remainder": remainder, "order": order})
                previous = remainder
    return rows


def density_maps(sens: Sensitivities, gradients: dict) -> dict:
    """``{(functional, control): Riesz representative dof values}``."""
    return {(name, control): np.array(riesz_representative(gradients[name][control]).dat.data_ro)
            for name in sens.forms for control in CONTROLS}


def upstream_median(sens: Sensitivities, values, x_max: float = 300e3) -> float:
    """The median of a density map over the nodes with ``x < x_max`` (grounded ice far from the grounding line)."""
    x = sens.model.thickness_space.mesh().coordinates.dat.data_ro[:, 0]
    return float(np.median(values[x < x_max])) if np.any(x < x_max) else float("nan")


def plot(sens: Sensitivities, maps: dict, path: Path) -> Path:
    mesh = sens.model.mesh
    coords = mesh.coordinates.dat.data_ro / 1e3
    triangles = mesh.coordinates.cell_node_map().values
    grounded = sens.grounded.dat.data_ro
    units = {"log_friction": "m^3 / m^2", "accumulation": "m^3 / (m/yr) / m^2", "initial_thickness": "m^3 / m / m^2"}
    fig, axes = plt.subplots(3, 2, figsize=(12, 4.6), sharex=True, sharey=True)
    for col, name in enumerate(("volume", "vaf")):
        for row, control in enumerate(CONTROLS):
            ax = axes[row, col]
            values = maps[name, control]
            bound = np.max(np.abs(values)) or 1.0
            image = ax.tripcolor(coords[:, 0], coords[:, 1], triangles, values, shading="gouraud", cmap="RdBu_r",
                                 vmin=-bound, vmax=bound)
            ax.tricontour(coords[:, 0], coords[:, 1], triangles, grounded, levels=[0.5], colors="k", linewidths=0.8)
            ax.set_title(f"d {'V' if name == 'volume' else 'VAF'} / d {control}", fontsize=9)
            ax.set_aspect("equal")
            fig.colorbar(image, ax=ax, shrink=0.8, label=units[control])
    for ax in axes[-1]:
        ax.set_xlabel("x (km)")
    T = sens.problem.steps * sens.problem.dt
    fig.suptitle(f"Sensitivities of volume and VAF after {T:g} years (black: initial grounding line)")
    return save_figure(fig, path)


def run(out: Path, full: bool) -> dict:
    size = sizes(full)
    sens = Sensitivities(size["problem"])
    gradients = {name: sens.gradient(name) for name in sens.forms}
    rows = taylor_rows(sens, gradients)
    write_csv(out / "taylor.csv", rows)
    maps = density_maps(sens, gradients)
    plot(sens, maps, out / "sensitivity_maps.png")
    orders = {f"{r['functional']}/{r['control']}": r["order"] for r in rows if r["eps"] == EPSILONS[-1]}
    T = size["problem"].steps * size["problem"].dt
    upstream = {"dV/da": upstream_median(sens, maps["volume", "accumulation"]),
                "dV/dh0": upstream_median(sens, maps["volume", "initial_thickness"])}
    mass_ok = abs(upstream["dV/da"] / T - 1) < 0.1 and abs(upstream["dV/dh0"] - 1) < 0.1
    ok = all(o >= ORDER_GOAL for o in orders.values()) and mass_ok
    headline = (f"gradients of V and VAF after {T:g} yr w.r.t. log friction, accumulation and initial thickness "
                f"pass the Taylor test: remainder orders {', '.join(f'{k} {v:.2f}' for k, v in orders.items())} "
                f"(goal >= {ORDER_GOAL}); far upstream (x < 300 km) dV/da = {upstream['dV/da']:.1f} m^3 per (m/yr) "
                f"per m^2 (mass conservation: T = {T:g}) and dV/dh0 = {upstream['dV/dh0']:.3f} (1)")
    return {"headline": headline, "headline_ok": ok, "taylor_orders": orders, "upstream_densities": upstream,
            "J": {name: g["J"] for name, g in gradients.items()},
            "initial_velocity_adjoint_norm": {name: g["velocity_bar_norm"] for name, g in gradients.items()},
            "files": ["sensitivity_maps.png", "taylor.csv"]}


def main(argv=None) -> int:
    return main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
