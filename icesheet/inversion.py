r"""Inversion of basal friction, rheology and initial thickness from observed velocities and surface elevations:
objective and gradient (snapshot mode here, transient mode in :class:`TransientInversion`), the L-BFGS solves that
resume, and the choice of the regularisation weight.

Controls (``CONTROLS``): ``friction``, :math:`\theta = \log C` (``model.log_friction``; the model must be built with
``friction_parameterisation="log"``), and ``rheology``, :math:`\phi = \log A` (``model.log_rate_factor``,
``rate_factor_parameterisation="log"``); logarithms keep :math:`C` and :math:`A` positive without bounds.  The
initial thickness, ``thickness``, is a control of the transient mode only (:class:`TransientInversion`, where it is
kept positive the same way, :math:`h_0 = e^\eta`).

Snapshot mode: one velocity solve :math:`u(\theta, \phi)` of the shallow-stream momentum balance at the model's
current (observed) geometry.  The objective (MacAyeal 1993, J. Glaciol. 39; Tikhonov regularisation of the gradient
as in icepack's inverse tutorial) is

.. math::
    J = \tfrac12 E(u) + \alpha \sum_{q \in \text{controls}} R(q),\qquad
    R(q) = \frac{L^2}{2|\Omega|}\int_\Omega |\nabla(q - q_0)|^2\,dx,

with :math:`E` the misfit per observation of :mod:`icesheet.observations` (1 at the noise level), :math:`q_0` the
initial guess (the prior), :math:`L` a length (default 100 km, as experiments/twin_inversion.py).  The total
variation option replaces :math:`R` by :math:`\frac{L}{|\Omega|}\int_\Omega (\sqrt{|\nabla(q - q_0)|^2 +
\epsilon^2 / L^2} - \epsilon / L)\,dx` (Rudin, Osher & Fatemi 1992, smoothed by :math:`\epsilon`).

Each evaluation tapes one velocity solve on a fresh pyadjoint tape (the fixed-point adjoint mode of
icesheet.velocity_solver: one taped Newton solve, so the adjoint is one linear solve) and returns :math:`J` and
:math:`dJ/dq`.  The Picard loop starts from the velocity of the last accepted iterate (``guess``), not from the last
trial, so that an evaluation depends only on the iterate and the saved state: a resumed run repeats the
uninterrupted one to the bit (serial).

Optimisation variables: :math:`z_i = q_i \sqrt{m_i / |\Omega|}` with :math:`m_i` the lumped mass of node
:math:`i`, so that :math:`\|z\|^2 = |\Omega|^{-1}\int q^2` (lumped) and the Euclidean geometry of L-BFGS is the
:math:`L^2` one of the fields, not that of the mesh's node numbering (Schwedes et al. 2017, Mesh dependence in
PDE-constrained optimisation, ch. 2).

The weight :math:`\alpha` by Morozov's discrepancy principle (Vogel 2002, Computational Methods for Inverse
Problems, sec. 7.3): the :math:`\alpha` at which the converged minimiser has :math:`E = \tau` (``target``, default
1).  :math:`E(\alpha)` increases with :math:`\alpha`; :func:`discrepancy_search` brackets the root by factors of
``bracket_factor`` and then refines it by regula falsi on :math:`(\log\alpha, \log E)` (Illinois variant), every
trial a minimiser converged to the gradient tolerance.  Those trials, and any other weights asked for, are the
points of the L-curve (Hansen 1992, SIAM Rev. 34).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icesheet.observations import misfit_per_observation
from icesheet.optimisation import LBFGSOptions, LBFGSState, load_state, minimise, save_state

__all__ = ["CONTROLS", "REGULARISATIONS", "STABILITY_MARGIN", "Regularisation", "SnapshotInversion",
           "TransientInversion", "SolveResult", "Inversion", "term_index", "model_substeps", "evaluate_prior",
           "snapshot_initialisation",
           "discrepancy_search", "control_parameters"]

logger = logging.getLogger(__name__)

CONTROLS = ("friction", "rheology", "thickness")
REGULARISATIONS = ("tikhonov", "tv")
_ATTRIBUTES = {"friction": "log_friction", "rheology": "log_rate_factor"}


def control_parameters(controls) -> dict:
    """The ``[solver]`` overrides (scenario parameters) that give a model the log parameterisation of ``controls``."""
    overrides = {}
    for control in controls:
        if control not in CONTROLS:
            raise ValueError(f"control = {control!r}: unknown; choose from {', '.join(CONTROLS)}")
        if control in _ATTRIBUTES:
            overrides[f"solver.{'friction' if control == 'friction' else 'rate_factor'}_parameterisation"] = "log"
    return overrides


@dataclass(frozen=True)
class Regularisation:
    """``kind`` (tikhonov or tv), length ``L`` (m), TV smoothing ``epsilon`` (dimensionless), and the thickness
    scale ``H`` (m) that makes the initial thickness's term dimensionless (:class:`TransientInversion`)."""

    kind: str = "tikhonov"
    length: float = 100e3
    epsilon: float = 1e-2
    thickness_scale: float = 100.0

    def __post_init__(self):
        if self.kind not in REGULARISATIONS:
            raise ValueError(f"regularisation = {self.kind!r}: choose one of {', '.join(REGULARISATIONS)}")
        for name in ("length", "epsilon", "thickness_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"regularisation {name} = {value!r}: must be a finite number > 0")

    def density(self, difference, area):
        """The integrand of :math:`R` for ``difference`` :math:`= q - q_0` (module docstring)."""
        import firedrake as fd

        gradient = fd.grad(difference)
        if self.kind == "tikhonov":
            return 0.5 * self.length**2 / area * fd.inner(gradient, gradient)
        delta = self.epsilon / self.length
        return self.length / area * (fd.sqrt(fd.inner(gradient, gradient) + delta**2) - delta)


class SnapshotInversion:
    """:math:`J` and :math:`dJ/dz` of the module docstring for ``model`` (at its current geometry), the
    ``observations`` (list of MeshObservations on ``model.velocity``) and ``controls`` (friction, rheology)."""

    transient = False

    def __init__(self, model, observations, controls=("friction",), regularisation: Regularisation = Regularisation()):
        import firedrake as fd
        from pyadjoint import stop_annotating

        self.model, self.observations, self.controls = model, list(observations), tuple(controls)
        if not self.observations:
            raise ValueError("observations: none given")
        if not self.transient:
            if "thickness" in self.controls:
                raise ValueError("control = 'thickness': the initial thickness is a control of the transient mode "
                                 "(TransientInversion)")
            surface = [o.path for o in self.observations if o.quantity != "velocity"]
            if surface:
                raise ValueError(f"observations {surface[0]!r}: surface elevations do not depend on friction or "
                                 "rheology at a fixed geometry; they need the transient mode (TransientInversion)")
        self.functions = []
        for control in (c for c in self.controls if c != "thickness"):
            function = getattr(model, _ATTRIBUTES.get(control, ""), None) if control in CONTROLS else None
            if function is None:
                raise ValueError(f"control = {control!r}: the model has no {_ATTRIBUTES.get(control, control)} "
                                 f"(build it with control_parameters({list(self.controls)}))")
            self.functions.append(function)
        mesh = model.mesh
        self.comm = mesh.comm
        self.area = fd.assemble(fd.Constant(1.0) * fd.dx(domain=mesh))
        with stop_annotating():
            self.priors = [f.copy(deepcopy=True) for f in self.functions]
        for f, prior in zip(self.functions, self.priors):
            prior.rename(f"{f.name()}_prior")
        self.alpha = 0.0
        self.regularisation = regularisation
        self._regularisation_forms = [regularisation.density(f - prior, self.area) * fd.dx
                                      for f, prior in zip(self.functions, self.priors)]
        lumped = fd.assemble(fd.TestFunction(model.thickness_space) * fd.dx).dat.data_ro
        self._scale = np.sqrt(lumped / self.area)
        self.observation_size = sum(o.size for o in self.observations)
        self.guess = model.velocity.dat.data_ro.copy()
        self.last = {}

    # -- vectors ----------------------------------------------------------------------------------------------------
    def blocks(self) -> list:
        """The sizes of the controls' parts of this rank's :math:`z` (one block per control), for L-BFGS's
        block-diagonal initial Hessian (icesheet/optimisation.py)."""
        return [self._scale.size] * len(self.functions)

    def vector(self) -> np.ndarray:
        """This rank's part of :math:`z` at the current control values."""
        return np.concatenate([np.empty(0)] + [f.dat.data_ro * self._scale for f in self.functions])

    def set_vector(self, z) -> None:
        from pyadjoint import stop_annotating

        n = self._scale.size
        with stop_annotating():
            for k, f in enumerate(self.functions):
                f.dat.data_wo[...] = z[k * n:(k + 1) * n] / self._scale

    # -- evaluation -------------------------------------------------------------------------------------------------
    def evaluate(self, z):
        """``(J, dJ/dz)`` at ``z``; ``(inf, zeros)`` if the velocity solve fails.  ``last`` holds the misfit ``E``,
        the regularisation :math:`\\sum R` (without ``alpha``) and the solver's iteration counts."""
        import firedrake as fd
        from firedrake.adjoint import Control, Tape, compute_derivative, set_working_tape, stop_annotating

        from checkpointing.adjoint.manager import _annotating
        from icesheet.velocity_solver import PicardConvergenceError

        self.set_vector(z)
        model = self.model
        with stop_annotating():
            model.velocity.dat.data_wo[...] = self.guess
        renewed = [*self.functions, model.velocity, model.thickness]
        for f in renewed:
            f.clear_block_variable()
        tape = Tape()
        try:
            with set_working_tape(tape), _annotating():
                controls = [Control(f) for f in self.functions]
                info = model.solve_velocity()
                misfit = misfit_per_observation(self.observations)
                regularisation = fd.assemble(sum(self._regularisation_forms))
                objective = 0.5 * misfit + self.alpha * regularisation
        except (PicardConvergenceError, fd.ConvergenceError) as err:
            logger.info("velocity solve failed (%s): J = inf", str(err).splitlines()[0])
            model.reset_solvers()  # a failed factorisation can break the next solves
            self.last = {}
            return math.inf, np.zeros_like(z)
        with stop_annotating():
            derivatives = compute_derivative(objective, controls, tape=tape)
        gradient = np.concatenate([d.dat.data_ro / self._scale for d in derivatives])
        self.last = {"misfit": float(misfit), "regularisation": float(regularisation),
                     "picard_iterations": info.picard_iterations, "newton_iterations": info.newton_iterations}
        value = float(objective)
        del tape, controls, derivatives, objective, misfit, regularisation
        for f in renewed:
            f.clear_block_variable()
        return self._checked(value, gradient)

    def _checked(self, value: float, gradient):
        """``(value, gradient)``, or ``(inf, zeros)`` if either is not finite (on any rank): an absurd trial point
        (the line search then shortens the step).  The solvers are then built anew: a factorisation that failed
        there can leave them, and the adjoint solvers cached on them, returning NaN at every later point."""
        finite = math.isfinite(value) and bool(np.all(np.isfinite(gradient)))
        if all(self.comm.allgather(finite)):
            return value, gradient
        logger.info("J = %g with a gradient that is not finite: J = inf", value)
        self.model.reset_solvers()
        self.last = {}
        return math.inf, np.zeros_like(gradient)

    def recovered_fields(self) -> list:
        """The control Functions as recovered, for output (the parameters' logarithms)."""
        return list(self.functions)

    def accept(self) -> None:
        """The last evaluation is the new iterate: the next solves start from its velocity."""
        self.guess = self.model.velocity.dat.data_ro.copy()

    def misfit(self, z) -> float:
        """The misfit per observation ``E`` at ``z`` (one untaped velocity solve from ``guess``)."""
        from pyadjoint import stop_annotating

        self.set_vector(z)
        with stop_annotating():
            self.model.velocity.dat.data_wo[...] = self.guess
            self.model.solve_velocity()
            return float(misfit_per_observation(self.observations))


class TransientInversion(SnapshotInversion):
    r"""Transient mode: velocities and surface elevations observed at several times of a run of ``timesteps`` from
    the model's current state :math:`x_0`.  ``observations`` maps a term index :math:`i` to MeshObservations of the
    state :math:`x_i`: its velocity, the one solved during step :math:`i-1` at the thickness of time :math:`t_{i-1}`
    (so velocities of time :math:`t_k = k\,\delta t` are term :math:`k + 1`, :func:`term_index`), or its
    thickness's surface elevation, that of time :math:`t_i` (term :math:`k`).  :math:`J = \tfrac12 E + \alpha\sum R`
    is the checkpoint manager's :math:`\sum_i j_i(x_i)` with :math:`j_0` holding :math:`\alpha\sum R` and
    :math:`j_i` the misfit terms of :math:`x_i`, :math:`E` normalised by all observed values of all times; each
    evaluation is one run of :func:`checkpointing.adjoint.gradient` with ``schedule`` on ``platform`` (default:
    Revolve with two RAM slots, whose memory does not grow with the number of steps or observation times) and
    ``storage`` (disk directories).  The state :math:`x_0` is the same at every evaluation (but for the initial
    thickness when it is a control), so no velocity guess is carried between evaluations.

    The initial thickness (control ``thickness``) is part of :math:`x_0`; its derivative is the manager's
    :math:`\bar x_0` (icesheet.controls).  It is kept positive by a log parameterisation, :math:`h_0 = e^{\eta}` at
    every vertex (so :math:`\partial J/\partial\eta_k = h_k\,\partial J/\partial h_k`), which also makes its
    optimisation variables dimensionless like those of :math:`\log C` and :math:`\log A`; its regularisation is on
    the thickness itself, in metres, made dimensionless by the scale :math:`H` (``regularisation.thickness_scale``):
    :math:`R(h_0) = \frac{L^2}{2|\Omega|}\int_\Omega |\nabla(h_0 - h_\text{prior})|^2 / H^2\,dx` (Tikhonov; TV
    likewise on :math:`(h_0 - h_\text{prior})/H`), :math:`h_\text{prior}` the model's thickness when the inversion
    is built."""

    transient = True

    def __init__(self, model, observations: dict, timesteps, controls=("friction",),
                 regularisation: Regularisation = Regularisation(), schedule="revolve", platform=None, storage=()):
        from checkpointing.platform import Level, Platform

        import firedrake as fd
        from pyadjoint import stop_annotating

        if not observations or min(observations) < 0 or max(observations) > len(timesteps):
            raise ValueError(f"observations: term indices {sorted(observations)} must lie in 0..{len(timesteps)}")
        if any(o.quantity == "velocity" for o in observations.get(0, ())):
            raise ValueError("observations: velocities are held by x_1 and later states (term 1 for time 0), not x_0")
        super().__init__(model, [o for sets in observations.values() for o in sets], controls, regularisation)
        self.by_term = {int(i): list(sets) for i, sets in observations.items()}
        self.log_thickness = None
        if "thickness" in self.controls:
            thickness = model.thickness.dat.data_ro
            thin = int(self.comm.allreduce(int(np.count_nonzero(thickness <= 0))))
            if thin:
                raise ValueError(f"control = 'thickness': the initial thickness is <= 0 at {thin} vertices; its log "
                                 "parameterisation needs ice everywhere")
            with stop_annotating():
                self.thickness_prior = model.thickness.copy(deepcopy=True)
                self.log_thickness = fd.Function(model.thickness_space, name="log_initial_thickness")
                self.log_thickness.dat.data_wo[...] = np.log(thickness)
            self.thickness_prior.rename("thickness_prior")
            difference = (model.thickness - self.thickness_prior) / regularisation.thickness_scale
            self._regularisation_forms.append(regularisation.density(difference, self.area) * fd.dx)
        self.timesteps = list(timesteps)
        self.schedule = schedule
        self.platform = platform or Platform((Level(2, name="ram"),), name="ram2")
        self.storage = storage
        self.last_result = None

    def blocks(self) -> list:
        return super().blocks() + ([self._scale.size] if self.log_thickness is not None else [])

    def vector(self) -> np.ndarray:
        z = super().vector()
        if self.log_thickness is None:
            return z
        return np.concatenate([z, self.log_thickness.dat.data_ro * self._scale])

    def set_vector(self, z) -> None:
        from pyadjoint import stop_annotating

        super().set_vector(z)
        if self.log_thickness is not None:
            with stop_annotating():
                self.log_thickness.dat.data_wo[...] = z[len(self.functions) * self._scale.size:] / self._scale
                self.model.thickness.dat.data_wo[...] = np.exp(self.log_thickness.dat.data_ro)

    def functional(self, index: int, state):
        """:math:`j_i` for the manager (see the class docstring)."""
        import firedrake as fd

        value = None
        if index == 0 and self.alpha and self._regularisation_forms:
            value = self.alpha * fd.assemble(sum(self._regularisation_forms))
        for o in self.by_term.get(index, ()):
            term = o.chi_squared() / (2 * self.observation_size)
            value = term if value is None else value + term
        return value

    def loop(self):
        from icesheet.controls import time_loop

        return time_loop(self.model, self.functional, self.timesteps, self.controls)

    def recovered_fields(self) -> list:
        """The control Functions as recovered, for output: the parameters' logarithms and the initial thickness."""
        return [*self.functions, *([self.model.thickness] if self.log_thickness is not None else [])]

    def evaluate(self, z):
        """``(J, dJ/dz)`` at ``z`` through the checkpoint manager; ``(inf, zeros)`` if a step or its adjoint fails."""
        import firedrake as fd
        from pyadjoint import stop_annotating

        from checkpointing.adjoint import StepFailedError, gradient

        self.set_vector(z)
        try:
            result = gradient(self.loop(), self.schedule, self.platform, self.storage)
        except StepFailedError as err:
            logger.info("a model step or its adjoint failed (%s): J = inf", str(err).splitlines()[0])
            self.model.reset_solvers()  # a failed factorisation can break the next solves
            self.last = {}
            return math.inf, np.zeros_like(z)
        with stop_annotating():
            regularisation = float(fd.assemble(sum(self._regularisation_forms)))
        self.last = {"misfit": 2 * (result.value - self.alpha * regularisation), "regularisation": regularisation,
                     "picard_iterations": 0, "newton_iterations": 0}
        self.last_result = result
        parts = [np.empty(0)] + [d.dat.data_ro / self._scale for d in result.gradient]
        if self.log_thickness is not None:  # dJ/d(eta_k) = h_k dJ/dh_k
            parts.append(result.initial_state_gradient[0].dat.data_ro * self.model.thickness.dat.data_ro
                         / self._scale)
        return self._checked(result.value, np.concatenate(parts))

    def accept(self) -> None:
        """Nothing to carry: every evaluation starts from the same :math:`x_0`."""

    def misfit(self, z) -> float:
        """The misfit per observation ``E`` at ``z`` (one untaped forward sweep)."""
        from checkpointing.adjoint import evaluate

        self.set_vector(z)
        alpha, self.alpha = self.alpha, 0.0
        try:
            return 2 * evaluate(self.loop())
        finally:
            self.alpha = alpha


#: the fraction of the stable time step at the prior's initial state that a transient inversion's model step may
#: take when chosen automatically (:func:`model_substeps`): the controls move the bound (the 4 km twin's true
#: friction halves it, 1.03 yr against the prior's 2.06 yr)
STABILITY_MARGIN = 0.5


def model_substeps(model, dt: float, substeps: int | None = None, margin: float = STABILITY_MARGIN):
    r"""``(n, limit)``: the model steps of ``dt / n`` per interval ``dt`` of a transient inversion, and the stable
    time step (icesheet/stability.py, a :class:`~icesheet.stability.TimeStepLimit`) at the model's initial state
    with its current controls (the prior).  The momentum-thickness coupling of a step is explicit: above the bound
    a thickness mode grows by :math:`|1 - \lambda\,\delta t| > 1` per step, and the objective with it (at 4 km cells
    the twin with 10-year steps, 10 times the truth's bound, reached E = 1.3e5 at its third time against 254 with
    1-year steps, benchmarks/bench_inversion.py ``--diagnose``).  ``substeps`` None: the smallest ``n`` with
    ``dt / n <=`` ``margin`` times the bound; given: refused (InputError) if ``dt / substeps`` is above the bound.
    The count is fixed for the whole inversion, so that :math:`J` is one smooth function of the controls."""
    from icesheet import stability
    from icesheet.errors import InputError

    limit = stability.initial_time_step_limit(model)
    if substeps is None:
        return stability.substeps(dt, margin * limit.dt, stability.MAX_SUBSTEPS), limit
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise InputError(f"substeps = {substeps!r}: must be an integer >= 1, or auto")
    if dt / substeps > limit.dt:
        needed = stability.substeps(dt, limit.dt, stability.MAX_SUBSTEPS)
        raise InputError(f"substeps = {substeps}: the model step dt / substeps = {dt / substeps:.3g} yr is above the "
                         f"{limit.describe()} at the initial state with the prior; use --substeps >= {needed} or auto")
    return substeps, limit


def term_index(quantity: str, time: float, dt: float) -> int:
    r"""The manager's term :math:`i` (state :math:`x_i`) that holds an observation of ``quantity`` of ``time``
    years, with steps of ``dt`` (:class:`TransientInversion`): :math:`t/\delta t + 1` for velocities (solved during
    the step from :math:`t`), :math:`t/\delta t` for surface elevations (of the thickness at :math:`t`)."""
    step = round(time / dt)
    return step + 1 if quantity == "velocity" else step


@dataclass
class SolveResult:
    """One converged (or stopped) minimisation at weight ``alpha``: the final L-BFGS state, misfit ``E`` and
    regularisation ``R`` (without alpha) at its iterate, ``history`` (one dict per iterate) and the velocity there."""

    index: int
    alpha: float
    state: LBFGSState
    misfit: float
    regularisation: float
    history: list = field(default_factory=list)
    velocity: np.ndarray | None = None

    @property
    def gradient_reduction(self) -> float:
        """The last gradient norm over the reference of the gradient test (the norm at the prior)."""
        if not self.history:
            return math.nan
        return self.history[-1]["gradient_norm"] / self.state.initial_gradient_norm \
            if self.state.initial_gradient_norm else 0.0


class Inversion:
    """Minimisations of a :class:`SnapshotInversion` (or :class:`TransientInversion`) at given weights, each saved
    after every iterate under ``directory`` (``solve<k>.rank<r>.npz``) so that a run continued with ``resume=True``
    repeats the same sequence:
    solves already finished are read back, the unfinished one continues from its last iterate.

    The first solve starts from the problem's current controls (the prior, or an initialisation such as
    :func:`snapshot_initialisation`); solve ``k`` starts from the solution of solve ``k - 1``; every solve's gradient
    test is relative to ``reference_gradient_norm`` (default: the norm at the first solve's start; give the norm at
    the prior, :func:`evaluate_prior`, when the first solve starts elsewhere)."""

    def __init__(self, problem: SnapshotInversion, directory, options: LBFGSOptions = LBFGSOptions(),
                 resume: bool = False, on_iteration=None, reference_gradient_norm: float | None = None):
        self.problem, self.options, self.resume = problem, options, resume
        self.directory = Path(directory)
        self.on_iteration = on_iteration
        self.results: list[SolveResult] = []
        self.reference_gradient_norm = reference_gradient_norm

    def _path(self, index: int) -> Path:
        return self.directory / f"solve{index:02d}.rank{self.problem.comm.rank}.npz"

    def solve(self, alpha: float) -> SolveResult:
        """The minimiser at ``alpha`` (the next solve of the sequence)."""
        problem, index = self.problem, len(self.results)
        problem.alpha = float(alpha)
        path = self._path(index)
        state, history = None, []
        if self.resume and path.is_file():
            state, extra, metadata = load_state(path)
            if not math.isclose(metadata["alpha"], alpha, rel_tol=1e-12):
                raise ValueError(f"resume: {path} holds solve {index} at alpha = {metadata['alpha']:g}, but this run "
                                 f"asks for alpha = {alpha:g}; the options differ from the interrupted run's")
            problem.guess = extra["velocity"]
            problem.set_vector(state.x)
            history = metadata["history"]
            if self.reference_gradient_norm is None:
                self.reference_gradient_norm = state.initial_gradient_norm
        elif self.results:
            previous = self.results[-1]
            problem.guess = previous.velocity.copy()
            problem.set_vector(previous.state.x)

        def record(current: LBFGSState):
            problem.accept()
            norm = math.sqrt(problem.comm.allreduce(float(np.dot(current.gradient, current.gradient))))
            history.append({"solve": index, "alpha": alpha, "iteration": current.iteration,
                            "evaluations": current.evaluations, "objective": current.value,
                            "misfit": problem.last.get("misfit", math.nan),
                            "regularisation": problem.last.get("regularisation", math.nan),
                            "gradient_norm": norm, "picard_iterations": problem.last.get("picard_iterations", 0)})
            if problem.comm.rank == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            problem.comm.barrier()
            save_state(current, path, problem.comm.rank, extra={"velocity": problem.guess},
                       metadata={"alpha": alpha, "history": history})
            if self.on_iteration:
                self.on_iteration(history[-1], current)

        if state is None or state.stop is None:
            state = minimise(problem.evaluate, problem.vector() if state is None else None, self.options,
                             comm=problem.comm, state=state, on_iteration=record,
                             reference_gradient_norm=self.reference_gradient_norm, blocks=problem.blocks())
            save_state(state, path, problem.comm.rank, extra={"velocity": problem.guess},
                       metadata={"alpha": alpha, "history": history})
        if self.reference_gradient_norm is None:
            self.reference_gradient_norm = state.initial_gradient_norm
        problem.set_vector(state.x)
        result = SolveResult(index, alpha, state, history[-1]["misfit"], history[-1]["regularisation"], history,
                             problem.guess.copy())
        self.results.append(result)
        return result


def evaluate_prior(problem: SnapshotInversion, path, resume: bool = False) -> dict:
    """``{"misfit": E, "gradient_norm": |dJ/dz|}`` at the problem's current controls (the prior), by one evaluation,
    written to ``path`` (JSON, rank 0) and read back from it when ``resume``: the reference of the gradient test and
    the misfit to report when the minimisation starts from an initialisation."""
    import json

    path = Path(path)
    if resume and path.is_file():
        return json.loads(path.read_text())
    _, gradient = problem.evaluate(problem.vector())
    norm = math.sqrt(problem.comm.allreduce(float(np.dot(gradient, gradient))))
    prior = {"misfit": problem.last.get("misfit", math.nan), "gradient_norm": norm}
    if problem.comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(prior) + "\n")
    problem.comm.barrier()
    return prior


def snapshot_initialisation(problem: TransientInversion, directory, alpha: float,
                            options: LBFGSOptions = LBFGSOptions(), resume: bool = False, on_iteration=None):
    r"""The starting point of a transient inversion, not the inversion itself: the snapshot inversion
    (:class:`SnapshotInversion`) of the velocities of time 0 (the observations of term 1) at the initial state, for
    the parameter controls (friction, rheology), at weight ``alpha``, minimised (and saved for ``resume``, as
    :class:`Inversion`) under ``directory``.  The transient problem's parameters are left at its minimiser, its
    initial thickness at the prior, and the model's velocity as it was (so :math:`x_0` is unchanged).  The snapshot
    objective has the same prior and regularisation; it only lacks the later times' data, so its minimiser is close
    to the transient one where the early velocities constrain the controls, and the transient minimisation from it
    has much less to do than from a uniform prior.  Returns the snapshot's :class:`SolveResult`, or None when there
    are no velocities of time 0 or no parameter control."""
    from pyadjoint import stop_annotating

    observations = [o for o in problem.by_term.get(1, ()) if o.quantity == "velocity"]
    controls = [c for c in problem.controls if c != "thickness"]
    if not observations or not controls:
        return None
    model = problem.model
    velocity = model.velocity.dat.data_ro.copy()
    snapshot = SnapshotInversion(model, observations, controls, problem.regularisation)
    result = Inversion(snapshot, directory, options, resume, on_iteration).solve(alpha)
    with stop_annotating():
        model.velocity.dat.data_wo[...] = velocity
    return result


def discrepancy_search(solve, alpha0: float, target: float = 1.0, tolerance: float = 0.05,
                       bracket_factor: float = 10.0, max_solves: int = 10):
    """The weight :math:`\\alpha` whose minimiser has misfit :math:`E = ` ``target`` (Morozov), to a relative
    ``tolerance`` on :math:`E`; ``solve(alpha)`` returns a SolveResult.  Returns ``(best, results)``: the result whose
    misfit is closest to the target (in :math:`|\\log E/\\tau|`) and every result computed, in order."""
    results = [solve(alpha0)]

    def gap(result):
        return math.log(max(result.misfit, 1e-300) / target)

    def done(result):
        return abs(result.misfit - target) <= tolerance * target

    # bracket: move alpha by factors until E - target changes sign
    while not done(results[-1]) and len(results) < max_solves:
        low = [r for r in results if gap(r) < 0]
        high = [r for r in results if gap(r) > 0]
        if low and high:
            break
        factor = bracket_factor if not high else 1 / bracket_factor
        results.append(solve(results[-1].alpha * factor))
    if not done(results[-1]) and len(results) < max_solves:
        lo = max((r for r in results if gap(r) < 0), key=lambda r: r.alpha)
        hi = min((r for r in results if gap(r) > 0), key=lambda r: r.alpha)
        points = [[math.log(lo.alpha), gap(lo)], [math.log(hi.alpha), gap(hi)]]
        side = 0
        while len(results) < max_solves:
            (a0, g0), (a1, g1) = points
            t = a0 - g0 * (a1 - a0) / (g1 - g0)
            result = solve(math.exp(t))
            results.append(result)
            if done(result):
                break
            g = gap(result)
            if g < 0:
                points[0] = [t, g]
                if side == -1:
                    points[1][1] /= 2  # Illinois: halve the stale end's value
                side = -1
            else:
                points[1] = [t, g]
                if side == 1:
                    points[0][1] /= 2
                side = 1
    best = min(results, key=lambda r: abs(gap(r)))
    return best, results
