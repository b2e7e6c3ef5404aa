r"""Limited-memory BFGS whose whole state can be saved and restored, for inversions that resume after a stop.

Why not scipy's L-BFGS-B: it keeps its memory pairs inside a compiled routine that cannot be given them back, so a
restarted run would start with an empty memory and follow another path.  Here the state of the method after an
accepted iterate is explicit (:class:`LBFGSState`: the iterate, its value and gradient, the ``m`` most recent pairs
:math:`s_k = x_{k+1} - x_k`, :math:`y_k = g_{k+1} - g_k`, the counters), is written to disk after every iteration,
and a run continued from it computes the same iterates as one that was never stopped.  The method is the textbook
one (Nocedal & Wright 2006, Numerical Optimization, 2nd ed.):

- direction :math:`p_k = -H_k g_k` by the two-loop recursion (Algorithm 7.4) with
  :math:`H_k^0 = \gamma_k I`, :math:`\gamma_k = s_{k-1}^T y_{k-1} / y_{k-1}^T y_{k-1}` (eq. 7.20); for a vector
  made of ``blocks`` (e.g. several controls) :math:`H_k^0` is block-diagonal, each block's :math:`\gamma` that of
  the block's part of the last pair (when its :math:`s^T y > 0`; else the global one): controls whose curvatures
  differ by orders of magnitude (log-friction and log-thickness: 2.4e4 against 9.4e6 along their gradients,
  docs/inversion.md) then get steps of their own scale from the first pair on, where one :math:`\gamma` serves
  the stiffest block only (Nocedal & Wright sec. 7.2 on the choice of :math:`H_k^0`; a diagonal scaling as in Gilbert
  & Lemaréchal 1989, Math. Program. 45);
- a step satisfying the strong Wolfe conditions with :math:`c_1 = 10^{-4}`, :math:`c_2 = 0.9` (Algorithms 3.5 and
  3.6; the zoom interpolates with the cubic of eq. 3.59, safeguarded by bisection); a failed function evaluation
  (``value = inf``, e.g. a velocity solve that did not converge) shortens the step.  If the zoom runs out of
  evaluations (``max_line_search``) it takes the best step found that meets the sufficient-decrease condition
  (evaluated once more, so that the last evaluation is the accepted point): where the objective has a kink along the
  line (e.g. a thickness crossing flotation, where the surface elevation switches formula) no step meets the
  curvature condition, and this Armijo step is what a backtracking search would take;
- a pair is kept only when :math:`s^T y > 0` (always true after a Wolfe step).

Vectors are this rank's part of a distributed vector; every inner product is summed over ``comm`` (an mpi4py
communicator, or None for serial), so the method runs unchanged under MPI.  No bounds: the controls of the
inversions are logarithms.

Stops (``LBFGSState.stop``): ``"gradient"`` when :math:`\|g_k\| \le` ``gradient_tolerance`` :math:`\|g_0\|`,
``"value"`` when the relative decrease of the value over one iteration is below ``value_tolerance``,
``"iterations"`` at ``max_iterations``, ``"line search"`` when no step along the direction meets the Wolfe conditions,
nor along the steepest descent with the memory emptied (a restart, tried once before giving up).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LBFGSOptions", "LBFGSState", "minimise", "dot", "save_state", "load_state"]


def dot(a, b, comm=None) -> float:
    """Inner product of two distributed vectors."""
    local = float(np.dot(a, b))
    return local if comm is None else float(comm.allreduce(local))


@dataclass(frozen=True)
class LBFGSOptions:
    memory: int = 10
    max_iterations: int = 200
    gradient_tolerance: float = 1e-3
    value_tolerance: float = 1e-10
    max_line_search: int = 20
    initial_step: float = 1.0
    block_scaling: bool = True  # a block-diagonal H^0 when minimise is given blocks (module docstring)

    def __post_init__(self):
        for name in ("memory", "max_iterations", "max_line_search"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: must be an integer >= 1")
        for name in ("gradient_tolerance", "value_tolerance", "initial_step"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} = {value!r}: must be a finite number > 0")


@dataclass
class LBFGSState:
    """The method after ``iteration`` accepted iterates: ``x``, ``value``, ``gradient`` there, the memory pairs
    (oldest first), ``initial_gradient_norm`` (of the starting point), ``evaluations`` so far, ``stop`` (None while
    running)."""

    x: np.ndarray
    value: float
    gradient: np.ndarray
    s: list = field(default_factory=list)
    y: list = field(default_factory=list)
    iteration: int = 0
    evaluations: int = 1
    initial_gradient_norm: float = float("nan")
    stop: str | None = None


def _direction(state: LBFGSState, comm, blocks=None) -> np.ndarray:
    """:math:`-H_k g_k` by the two-loop recursion (``blocks``: the sizes of this rank's blocks, see the module
    docstring)."""
    q = state.gradient.copy()
    alphas = []
    rhos = [1.0 / dot(s, y, comm) for s, y in zip(state.s, state.y)]
    for s, y, rho in reversed(list(zip(state.s, state.y, rhos))):
        a = rho * dot(s, q, comm)
        alphas.append(a)
        q -= a * y
    if state.s:
        s, y = state.s[-1], state.y[-1]
        gamma = dot(s, y, comm) / dot(y, y, comm)
        if blocks is None or len(blocks) < 2:
            q *= gamma
        else:
            start = 0
            for size in blocks:
                part = slice(start, start + size)
                sy, yy = dot(s[part], y[part], comm), dot(y[part], y[part], comm)
                q[part] *= sy / yy if sy > 0 and yy > 0 else gamma
                start += size
    for (s, y, rho), a in zip(zip(state.s, state.y, rhos), reversed(alphas)):
        b = rho * dot(y, q, comm)
        q += (a - b) * s
    return -q


def _cubic_minimiser(a, fa, da, b, fb, db):
    """Minimiser of the cubic through (a, fa, da) and (b, fb, db) (Nocedal & Wright eq. 3.59), or None."""
    d1 = da + db - 3 * (fa - fb) / (a - b)
    radicand = d1 * d1 - da * db
    if radicand < 0:
        return None
    d2 = math.copysign(math.sqrt(radicand), b - a)
    denominator = db - da + 2 * d2
    if denominator == 0:
        return None
    return b - (b - a) * (db + d2 - d1) / denominator


def _line_search(function, state: LBFGSState, direction, step, options: LBFGSOptions, comm):
    """A step length along ``direction`` meeting the strong Wolfe conditions (Algorithms 3.5/3.6), returned with
    ``(x, value, gradient)`` at it (the last point evaluated), or None if none was found."""
    c1, c2 = 1e-4, 0.9
    f0, d0 = state.value, dot(state.gradient, direction, comm)
    if not d0 < 0:
        return None, 0
    evaluations = 0

    def phi(t):
        nonlocal evaluations
        evaluations += 1
        x = state.x + t * direction
        value, gradient = function(x)
        slope = dot(gradient, direction, comm) if math.isfinite(value) else math.nan
        return x, value, gradient, slope

    def zoom(lo, hi):
        # lo, hi: (t, value, slope); lo satisfies sufficient decrease and has the lower value
        while evaluations < options.max_line_search:
            t = None
            if math.isfinite(hi[1]) and math.isfinite(hi[2]):
                t = _cubic_minimiser(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
            low, high = min(lo[0], hi[0]), max(lo[0], hi[0])
            if t is None or not (low + 0.1 * (high - low) <= t <= high - 0.1 * (high - low)):
                t = 0.5 * (lo[0] + hi[0])
            x, value, gradient, slope = phi(t)
            if not math.isfinite(value) or value > f0 + c1 * t * d0 or value >= lo[1]:
                hi = (t, value, slope)
            else:
                if abs(slope) <= -c2 * d0:
                    return x, value, gradient
                if slope * (hi[0] - lo[0]) >= 0:
                    hi = lo
                lo = (t, value, slope)
        if lo[0] > 0:  # out of evaluations: the best step with sufficient decrease, evaluated last again
            x, value, gradient, _ = phi(lo[0])
            if math.isfinite(value):
                return x, value, gradient
        return None

    previous = (0.0, f0, d0)
    t = step
    while evaluations < options.max_line_search:
        x, value, gradient, slope = phi(t)
        if not math.isfinite(value):
            result = zoom(previous, (t, value, slope))
            break
        if value > f0 + c1 * t * d0 or (evaluations > 1 and value >= previous[1]):
            result = zoom(previous, (t, value, slope))
            break
        if abs(slope) <= -c2 * d0:
            result = (x, value, gradient)
            break
        if slope >= 0:
            result = zoom((t, value, slope), previous)
            break
        previous, t = (t, value, slope), 2.0 * t
    else:
        result = None
    return result, evaluations


def minimise(function, x0=None, options: LBFGSOptions = LBFGSOptions(), comm=None, state: LBFGSState | None = None,
             on_iteration=None, reference_gradient_norm: float | None = None, blocks=None) -> LBFGSState:
    """Minimise ``function(x) -> (value, gradient)`` from ``x0``, or continue from a saved ``state``.

    ``on_iteration(state)`` is called after the start and after every accepted iterate (e.g. to save the state or
    log a line); ``function`` is told nothing about acceptance: the last point it evaluated before
    ``on_iteration`` is the accepted one.  The gradient test compares with ``reference_gradient_norm`` (default: the
    norm at ``x0``), e.g. the norm at a cold start for runs started warm.  ``blocks``: the sizes of the blocks of
    this rank's part of the vector (their sum its length), for a block-diagonal :math:`H_k^0`."""
    if state is None:
        value, gradient = function(np.asarray(x0, dtype=float))
        if not math.isfinite(value):
            raise FloatingPointError(f"the objective at the starting point is {value}")
        state = LBFGSState(np.array(x0, dtype=float), value, np.array(gradient))
        state.initial_gradient_norm = reference_gradient_norm or math.sqrt(dot(gradient, gradient, comm))
        if on_iteration:
            on_iteration(state)
    while state.stop is None:
        norm = math.sqrt(dot(state.gradient, state.gradient, comm))
        if norm <= options.gradient_tolerance * state.initial_gradient_norm:
            state.stop = "gradient"
            break
        if state.iteration >= options.max_iterations:
            state.stop = "iterations"
            break
        direction = _direction(state, comm, blocks if options.block_scaling else None)
        if not dot(direction, state.gradient, comm) < 0:  # not a descent direction: forget the memory
            state.s.clear(), state.y.clear()
            direction = -state.gradient
        step = 1.0 if state.s else options.initial_step / norm
        found, evaluations = _line_search(function, state, direction, step, options, comm)
        state.evaluations += evaluations
        if found is None and state.s:  # retry once along the steepest descent with an empty memory
            state.s.clear(), state.y.clear()
            found, evaluations = _line_search(function, state, -state.gradient, options.initial_step / norm, options,
                                              comm)
            state.evaluations += evaluations
        if found is None:
            state.stop = "line search"
            break
        x, value, gradient = found
        s, y = x - state.x, gradient - state.gradient
        if dot(s, y, comm) > 0:
            state.s.append(s)
            state.y.append(y)
            del state.s[:-options.memory], state.y[:-options.memory]
        decrease = (state.value - value) / max(abs(state.value), np.finfo(float).tiny)
        state.x, state.value, state.gradient = x, value, gradient
        state.iteration += 1
        if decrease < options.value_tolerance:
            state.stop = "value"
        if on_iteration:
            on_iteration(state)
    return state


def save_state(state: LBFGSState, path, rank: int = 0, extra: dict | None = None, metadata=None) -> None:
    """Write ``state``, ``extra`` arrays (e.g. the model's velocity) and ``metadata`` (JSON-serialisable) to ``path``
    (this rank's ``.npz``), atomically (a temporary file renamed)."""
    path = Path(path)
    scalars = {"value": state.value, "iteration": state.iteration, "evaluations": state.evaluations,
               "initial_gradient_norm": state.initial_gradient_norm, "stop": state.stop, "pairs": len(state.s)}
    arrays = {"x": state.x, "gradient": state.gradient, **{f"s{k}": s for k, s in enumerate(state.s)},
              **{f"y{k}": y for k, y in enumerate(state.y)},
              **{f"extra_{k}": v for k, v in (extra or {}).items()}}
    temporary = path.with_name(path.name + f".tmp{rank}.npz")
    np.savez(temporary, scalars=json.dumps(scalars), metadata=json.dumps(metadata), **arrays)
    temporary.replace(path)


def load_state(path) -> tuple[LBFGSState, dict, object]:
    """``(state, extra, metadata)`` as written by :func:`save_state`."""
    with np.load(path) as data:
        scalars = json.loads(str(data["scalars"]))
        pairs = scalars.pop("pairs")
        state = LBFGSState(np.array(data["x"]), scalars.pop("value"), np.array(data["gradient"]),
                           [np.array(data[f"s{k}"]) for k in range(pairs)],
                           [np.array(data[f"y{k}"]) for k in range(pairs)], **scalars)
        extra = {k[len("extra_"):]: np.array(data[k]) for k in data.files if k.startswith("extra_")}
        metadata = json.loads(str(data["metadata"]))
    return state, extra, metadata
