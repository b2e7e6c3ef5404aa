r"""Vanilla pyadjoint's checkpointed adjoint is wrong when a step depends nonlinearly on the previous state: a minimal
reproducer, checked against finite differences, beside our checkpoint manager.

The model: 1-D reaction-diffusion (Fisher-KPP) :math:`u_t = D u_{xx} + r(x)\,u(1 - u)` on [0, 1], natural boundary,
P1 elements on ``--cells`` cells, ``--steps`` steps of length dt = 0.1, D = 0.01, :math:`r \approx 5`.  One step
:math:`u^n \to u^{n+1}` is one Newton solve, in one of three ways (``--schemes``):

- ``imex``: diffusion implicit, reaction explicit, :math:`(u^{n+1} - u^n)/\delta t - D u^{n+1}_{xx} = r u^n(1 - u^n)`:
  the step is a nonlinear function of the previous state, so its adjoint needs the *value* of :math:`u^n`;
- ``imex-copy``: the same arithmetic, but the step first copies :math:`u^n` into a Function of its own
  (``u_in.assign(u)``) and its forms read the copy (the copy is linear, so its adjoint needs no value);
- ``implicit``: backward Euler for both terms, :math:`(u^{n+1} - u^n)/\delta t - D u^{n+1}_{xx} = r u^{n+1}(1 -
  u^{n+1})`: the previous state enters linearly.

:math:`J = \int u_l^2\,dx`, controls: the initial state :math:`u_0` and the rate field :math:`r(x)`; every gradient is
reported as the directional derivative :math:`dJ\cdot h` for a fixed :math:`h = (h_{u_0}, h_r)`.

Variants:

- ``pyadjoint-tape``: pyadjoint 2026.10 without checkpointing (the whole tape), ``ReducedFunctional.derivative``;
- ``pyadjoint-single-memory``, ``pyadjoint-revolve``, ``pyadjoint-multistage``: the same loop with
  ``tape.enable_checkpointing`` and checkpoint_schedules' ``SingleMemoryStorageSchedule()``, ``Revolve(l, --snaps)``,
  ``MultistageCheckpointSchedule(l, --snaps, 0)``.  The loop is written as pyadjoint asks: ``tape.timestepper``,
  the initial-state control a separate Function assigned into the state, ``J`` taped inside the last time step;
- ``manager-store-all``, ``manager-revolve``: our manager (checkpointing/adjoint/manager.py) with every state in RAM,
  and with Revolve on ``--snaps`` RAM slots (Griewank & Walther 2000).

Checks, with oracles nobody here wrote: central finite differences
:math:`(J(m + \epsilon h) - J(m - \epsilon h))/(2\epsilon)` of an untaped forward run for
:math:`\epsilon = 10^{-1} .. 10^{-7}` (``fd_reference`` is the value at the :math:`\epsilon` where successive
differences agree best; ``fd_error`` is each gradient's relative distance to it), and Taylor remainders
:math:`|J(m + \epsilon h) - J(m) - \epsilon\,dJ\cdot h|` for :math:`\epsilon = 0.05 \cdot 2^{-k}`, whose order
(``taylor_order``, the smallest of the observed orders) is 2 for a right gradient and 1 for a wrong one.  Our manager
must also equal the whole-tape gradient to 1e-10 (``vs_tape``).

Measured (benchmarks/results/bench_pyadjoint_checkpointing_bug.*; 64 cells, 4 steps, 1 snapshot, pyadjoint 2026.10.0,
checkpoint_schedules 1.0.4; the same to all digits under ``mpiexec -n 2``): with ``imex``, Revolve and Multistage
give dJ.h = 0.15757 where central differences give 0.21251 (26 % off, Taylor order 1.00); the whole tape,
SingleMemory and our manager (store-all and Revolve) give 0.2125082792, 2e-10 from the differences (order 1.88-2),
and our Revolve equals store-all to round-off (``vs_tape`` 0).  ``imex-copy`` and ``implicit`` are right in every
variant.  With ``--steps 10 --snaps 3`` the checkpointed error grows to 75 % (0.03897 against 0.15591).  The error
size depends on the model (a previous 1-D run with other parameters was 3.8 % off; the ice model 0.84-12 %,
benchmarks/results/bench_memory_ice.csv); its sign of life is the Taylor order 1.

What goes wrong (hypothesis, with the evidence below).  pyadjoint's ``CheckpointManager`` (pyadjoint/checkpointing.py)
executes checkpoint_schedules' actions on a tape split into time steps (pyadjoint/tape.py ``TimeStep``: its
``checkpointable_state`` is the set of block variables the step reads from earlier steps, its
``adjoint_dependencies`` the ones its adjoint reads).  Before ``Reverse(n + 1, n)`` the schedule recomputes step
``n`` with ``Forward(n, n + 1, write_ics=False, write_adj_deps=True, storage=WORK)``.  The handler of that action
(``process_operation.register(Forward)``) recomputes the blocks, then clears the checkpoint of every block variable
of ``current_step.checkpointable_state`` that step ``n + 1`` does not read (``var._checkpoint = None``), *whatever
``write_adj_deps`` says*; only the step's *outputs* are kept when ``write_adj_deps`` is set.  The state
:math:`u^n` the step read from step ``n - 1`` is such an input: its checkpoint is gone when ``Reverse`` runs, and
``BlockVariable.saved_output`` then falls back to the live Function ``u``, which holds whatever was last written
into it, the final state :math:`u^l` of the taped forward run (recomputations write into checkpoints, not into the
live Functions).  The adjoint of a term linear in :math:`u^n` needs no value of it, so ``implicit`` and ``imex-copy``
(where the nonlinear term reads a copy made inside the step, an output the handler keeps) come out right; the
adjoint of :math:`r u^n(1 - u^n)` needs :math:`r(1 - 2u^n)` and :math:`u^n(1 - u^n)` and gets them at :math:`u^l`.
``SingleMemoryStorageSchedule`` stores with ``storage=RAM``, where ``TimeStep.checkpoint`` saves the adjoint
dependencies and the handler has a branch of its own that keeps them, hence right.  Evidence: ``reads`` lists, for
each reversed step ``n`` of the checkpointed runs, which forward state :math:`x_k` the adjoint of step ``n``
actually reads for the block variable of ``u`` it took from step ``n - 1`` (found by comparing
``saved_output``'s values with the states recorded while taping; ``*`` marks a cleared checkpoint, i.e. the live
Function): a right schedule reads ``n:n``.

Usage:  python benchmarks/bench_pyadjoint_checkpointing_bug.py [--cells 64] [--steps 4] [--snaps 1]
        [--schemes imex imex-copy implicit]
Prints a table and writes benchmarks/results/bench_pyadjoint_checkpointing_bug.{csv,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
NAME = "bench_pyadjoint_checkpointing_bug"
SCHEMES = ("imex", "imex-copy", "implicit")
VARIANTS = ("pyadjoint-tape", "pyadjoint-single-memory", "pyadjoint-revolve", "pyadjoint-multistage",
            "manager-store-all", "manager-revolve")
FD_EPSILONS = tuple(10.0 ** -k for k in range(1, 8))
TAYLOR_EPSILONS = tuple(0.05 * 2.0 ** -k for k in range(5))
DIFFUSIVITY, RATE, DT = 0.01, 5.0, 0.1
COLUMNS = ("scheme", "variant", "J", "directional_derivative", "fd_reference", "fd_error", "vs_tape",
           "taylor_order", "reads")


class ReactionDiffusion:
    """The model of the module docstring, following the manager's model contract (checkpointing/adjoint/protocol.py):
    ``state = (u,)``, ``step(dt)`` overwrites ``u`` in place; Functions, forms and the solver are built once.
    ``initial`` holds u_0 (a Function of its own, the initial-state control of the pyadjoint runs)."""

    def __init__(self, scheme: str, cells: int):
        import firedrake as fd

        if scheme not in SCHEMES:
            raise ValueError(f"scheme = {scheme!r}: choose one of {SCHEMES}")
        mesh = fd.IntervalMesh(cells, 1.0)
        V = fd.FunctionSpace(mesh, "CG", 1)
        (x,) = fd.SpatialCoordinate(mesh)
        self.mesh = mesh
        self.u = fd.Function(V, name="u")
        self.initial = fd.Function(V, name="initial").interpolate(0.3 + 0.2 * fd.cos(fd.pi * x))
        self.rate = fd.Function(V, name="rate").interpolate(RATE * (1 + 0.3 * fd.sin(2 * fd.pi * x)))
        self.u_next = fd.Function(V, name="u_next")
        self.u_in = fd.Function(V, name="u_in") if scheme == "imex-copy" else None
        self._timestep = fd.Function(fd.FunctionSpace(mesh, "R", 0), name="dt")
        previous = self.u_in if self.u_in is not None else self.u
        reacting = self.u_next if scheme == "implicit" else previous
        v = fd.TestFunction(V)
        residual = ((self.u_next - previous) / self._timestep * v
                    + DIFFUSIVITY * fd.inner(fd.grad(self.u_next), fd.grad(v))
                    - self.rate * reacting * (1 - reacting) * v) * fd.dx
        self._solver = fd.NonlinearVariationalSolver(fd.NonlinearVariationalProblem(residual, self.u_next),
                                                     solver_parameters={"snes_rtol": 1e-14, "snes_atol": 1e-15,
                                                                        "ksp_type": "preonly", "pc_type": "lu"})
        self.functional_form = self.u ** 2 * fd.dx
        self.u.assign(self.initial)

    @property
    def state(self) -> tuple:
        return (self.u,)

    def step(self, dt: float) -> None:
        self._timestep.assign(dt)
        if self.u_in is not None:
            self.u_in.assign(self.u)
        self.u_next.assign(self.u)
        self._solver.solve()
        self.u.assign(self.u_next)


def untaped_value(model: ReactionDiffusion, steps: int, initial, rate) -> float:
    """J for the initial state ``initial`` and rate field ``rate`` (UFL expressions), by an untaped forward run."""
    import firedrake as fd
    from firedrake.adjoint import stop_annotating

    with stop_annotating():
        model.u.interpolate(initial)
        model.rate.interpolate(rate)
        for _ in range(steps):
            model.step(DT)
        return float(fd.assemble(model.functional_form))


def directions(model: ReactionDiffusion):
    """The fixed direction h = (h_u0, h_r)."""
    import firedrake as fd

    (x,) = fd.SpatialCoordinate(model.mesh)
    V = model.u.function_space()
    return (fd.Function(V).interpolate(0.1 * fd.cos(3 * fd.pi * x) + 0.05),
            fd.Function(V).interpolate(1.0 + fd.sin(fd.pi * x)))


def finite_differences(scheme: str, cells: int, steps: int) -> dict:
    """J at the base point, central differences along h over FD_EPSILONS, and J(m + eps h) over TAYLOR_EPSILONS."""
    model = ReactionDiffusion(scheme, cells)
    h_u0, h_r = directions(model)
    u0, r0 = model.initial.copy(deepcopy=True), model.rate.copy(deepcopy=True)

    def J(eps):
        return untaped_value(model, steps, u0 + eps * h_u0, r0 + eps * h_r)

    base = J(0.0)
    central = [(J(e) - J(-e)) / (2 * e) for e in FD_EPSILONS]
    agreement = [abs(a - b) for a, b in zip(central, central[1:])]
    best = int(np.argmin(agreement))
    return {"J": base, "central": central, "reference": central[best + 1],
            "reference_epsilon": FD_EPSILONS[best + 1], "taylor": [J(e) for e in TAYLOR_EPSILONS]}


def _schedule(variant: str, steps: int, snaps: int):
    from checkpoint_schedules import MultistageCheckpointSchedule, Revolve, SingleMemoryStorageSchedule

    return {"pyadjoint-tape": None, "pyadjoint-single-memory": SingleMemoryStorageSchedule(),
            "pyadjoint-revolve": Revolve(steps, snaps),
            "pyadjoint-multistage": MultistageCheckpointSchedule(steps, snaps, 0)}[variant]


def _probe(tape, model: ReactionDiffusion, states: list, readings: list) -> None:
    """Wrap the tape's checkpoint manager so that, at each Reverse action, ``readings`` gets ``(n, k, cleared)``
    for each block variable of ``u`` that step n reads from an earlier step: the adjoint of step n will read the
    values of the forward state x_k (k = -1: none of them), from the live Function if ``cleared``."""
    from checkpoint_schedules import Reverse

    manager = tape._checkpoint_manager
    process = manager.process_operation

    def which_state(values) -> int:
        matches = [k for k, x in enumerate(states) if np.array_equal(values, x)]
        return matches[-1] if matches else -1

    def probed(action, *args, **kwargs):
        if isinstance(action, Reverse):
            for n in action:
                blocks = tape.timesteps[n]
                produced = {id(out) for block in blocks for out in block.get_outputs()}
                seen = set()
                for block in blocks:
                    for dep in block.get_dependencies():
                        if dep.output is model.u and id(dep) not in produced and id(dep) not in seen:
                            seen.add(id(dep))
                            readings.append((n, which_state(dep.saved_output.dat.data_ro),
                                             dep.checkpoint is None))
        return process(action, *args, **kwargs)

    manager.process_operation = probed


def pyadjoint_gradient(variant: str, scheme: str, cells: int, steps: int, snaps: int) -> dict:
    """J, dJ.h and the probe's readings for one vanilla-pyadjoint variant."""
    import firedrake as fd
    from firedrake.adjoint import (Control, ReducedFunctional, Tape, continue_annotation, pause_annotation,
                                   set_working_tape)

    model = ReactionDiffusion(scheme, cells)
    h_u0, h_r = directions(model)
    readings: list = []
    states = [model.initial.dat.data_ro.copy()]
    schedule = _schedule(variant, steps, snaps)
    with set_working_tape(Tape()) as tape:
        if schedule is not None:
            tape.enable_checkpointing(schedule)
        continue_annotation()
        controls = [Control(model.initial), Control(model.rate)]
        model.u.assign(model.initial)
        for i in tape.timestepper(iter(range(steps))):
            model.step(DT)
            states.append(model.u.dat.data_ro.copy())
            if i == steps - 1:
                J = fd.assemble(model.functional_form)
        pause_annotation()
        if schedule is not None:
            _probe(tape, model, states, readings)
        derivative = ReducedFunctional(J, controls).derivative()
    value = float(derivative[0].dat.inner(h_u0.dat) + derivative[1].dat.inner(h_r.dat))
    return {"J": float(J), "directional_derivative": value,
            "reads": " ".join(f"{n}:{k}{'*' if cleared else ''}" for n, k, cleared in sorted(readings))}


def manager_gradient(variant: str, scheme: str, cells: int, steps: int, snaps: int) -> dict:
    """J and dJ.h from our checkpoint manager (controls: x_0 = u_0 and the rate field)."""
    import firedrake as fd

    from checkpointing.adjoint import TimeLoop, gradient
    from checkpointing.platform import Platform

    model = ReactionDiffusion(scheme, cells)
    h_u0, h_r = directions(model)

    def functional(index, state):
        return fd.assemble(model.functional_form) if index == steps else None

    loop = TimeLoop(model, [DT] * steps, (model.rate,), functional)
    spec, planner = {"manager-store-all": ("inf:0:0", "store-all"),
                     "manager-revolve": (f"{snaps}:0:0", "revolve")}[variant]
    result = gradient(loop, planner, Platform.from_spec(spec))
    value = float(result.initial_state_gradient[0].dat.inner(h_u0.dat) + result.gradient[0].dat.inner(h_r.dat))
    return {"J": result.value, "directional_derivative": value, "reads": ""}


def taylor_order(fd_result: dict, derivative: float) -> float:
    """The smallest observed order of |J(m + eps h) - J(m) - eps dJ.h| over TAYLOR_EPSILONS."""
    remainders = [abs(Je - fd_result["J"] - e * derivative) for Je, e in zip(fd_result["taylor"], TAYLOR_EPSILONS)]
    return min(math.log2(a / b) for a, b in zip(remainders, remainders[1:]))


def run(schemes, cells: int, steps: int, snaps: int) -> tuple[list[dict], dict]:
    rows, sweeps = [], {}
    for scheme in schemes:
        reference = finite_differences(scheme, cells, steps)
        sweeps[scheme] = {"epsilons": FD_EPSILONS, "central": reference["central"],
                          "reference_epsilon": reference["reference_epsilon"]}
        tape_value = None
        for variant in VARIANTS:
            compute = pyadjoint_gradient if variant.startswith("pyadjoint") else manager_gradient
            out = compute(variant, scheme, cells, steps, snaps)
            derivative = out["directional_derivative"]
            tape_value = derivative if variant == "pyadjoint-tape" else tape_value
            rows.append({"scheme": scheme, "variant": variant, "J": out["J"], "directional_derivative": derivative,
                         "fd_reference": reference["reference"],
                         "fd_error": abs(derivative - reference["reference"]) / abs(reference["reference"]),
                         "vs_tape": abs(derivative - tape_value) / abs(tape_value),
                         "taylor_order": taylor_order(reference, derivative), "reads": out["reads"]})
    return rows, sweeps


def write_and_print(rows: list[dict], sweeps: dict, settings: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{NAME}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / f"{NAME}.json").write_text(json.dumps({**settings, "fd_sweeps": sweeps, "rows": rows}, indent=1))
    print(f"{settings['cells']} cells, {settings['steps']} steps, {settings['snaps']} snapshot(s); pyadjoint "
          f"{settings['versions']['pyadjoint']}, checkpoint_schedules {settings['versions']['checkpoint_schedules']}; "
          f"load {settings['loadavg']}")
    for scheme, sweep in sweeps.items():
        cells = "  ".join(f"{e:.0e}: {c:.10f}" for e, c in zip(sweep["epsilons"], sweep["central"]))
        print(f"central differences ({scheme}): {cells}")
    print(f"{'scheme':>10} {'variant':>24} {'dJ.h':>16} {'FD reference':>16} {'rel. error':>10} {'vs tape':>9} "
          f"{'Taylor':>6}  reads (step n: state read)")
    for r in rows:
        print(f"{r['scheme']:>10} {r['variant']:>24} {r['directional_derivative']:16.10f} {r['fd_reference']:16.10f} "
              f"{r['fd_error']:10.2e} {r['vs_tape']:9.1e} {r['taylor_order']:6.2f}  {r['reads']}")
    print(f"written: {RESULTS / (NAME + '.csv')}, {RESULTS / (NAME + '.json')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--snaps", type=int, default=1, help="checkpoints of Revolve and Multistage")
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    args = parser.parse_args(argv)
    if args.cells < 2 or args.steps < 2 or not 1 <= args.snaps < args.steps:
        parser.error(f"--cells {args.cells} (>= 2), --steps {args.steps} (>= 2), --snaps {args.snaps} "
                     "(1 <= snaps < steps)")
    from importlib.metadata import version

    from icesheet.cli import import_firedrake

    import_firedrake()  # PETSc must not see this script's arguments
    from firedrake import COMM_WORLD

    rows, sweeps = run(args.schemes, args.cells, args.steps, args.snaps)
    settings = {"cells": args.cells, "steps": args.steps, "snaps": args.snaps, "dt": DT, "ranks": COMM_WORLD.size,
                "loadavg": [round(v, 2) for v in os.getloadavg()],
                "versions": {p: version(p) for p in ("firedrake", "pyadjoint-ad", "checkpoint-schedules")}}
    settings["versions"]["pyadjoint"] = settings["versions"].pop("pyadjoint-ad")
    settings["versions"]["checkpoint_schedules"] = settings["versions"].pop("checkpoint-schedules")
    if COMM_WORLD.rank == 0:
        write_and_print(rows, sweeps, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
