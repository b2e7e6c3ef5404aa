r"""Options of the velocity solve and the linear solvers, as plain data (no Firedrake import, so that scenario files
are checked before Firedrake loads).

``PicardOptions`` holds the strategy of the velocity solve and its tolerances (icesheet.velocity_solver explains
each strategy; docs/solvers.md compares them).  Linear solvers are PETSc option dictionaries.  The Picard operator
and the Newton Jacobian of the SSA are symmetric positive definite (the SSA velocity minimises a strictly convex
action; Schoof 2006, J. Fluid Mech. 556), so besides LU they admit Cholesky and conjugate gradients:

- ``"cholesky"``: sparse direct Cholesky factorisation, by CHOLMOD (SuiteSparse; Chen et al. 2008, ACM Trans. Math.
  Softw. 35) on one rank and by MUMPS on several (CHOLMOD is serial);
- ``"mumps"``: MUMPS's sparse direct LU factorisation (the seed's choice);
- ``"cg"`` or ``"gmres"``: a Krylov method with one of the preconditioners of our PETSc build:

  - ``"cholesky"`` or ``"lu"``: a factorisation as above, which Newton may reuse over several Jacobians
    (``PicardOptions.preconditioner_lag``; PETSc's ``SNESSetLagPreconditioner``): the linear solves of Newton's
    method are then conjugate-gradient iterations preconditioned by the factorisation of an earlier Jacobian of the
    same solve (a Newton-Krylov method; Kelley 2003, *Solving Nonlinear Equations with Newton's Method*, SIAM).
    ``cg`` + ``cholesky`` with the adaptive lag (``preconditioner_lag = 0``) is the default on one rank;
  - ``"auto"`` (the default): ``"cholesky"`` on one rank, ``"asm-cholesky"`` on more (:func:`resolved_preconditioner`);
  - ``"gamg"``: smoothed-aggregation algebraic multigrid (PETSc's GAMG), with the rigid-body modes of the plane as
    near-nullspace;
  - ``"asm-cholesky"``: additive Schwarz (Smith, Bjørstad & Gropp 1996, *Domain Decomposition*, Cambridge UP), one
    subdomain per rank grown by ``ASM_OVERLAP`` layers of the matrix graph, each factorised by a serial Cholesky
    (CHOLMOD) on its rank; the symmetric variant (``pc_asm_type basic``), so that CG applies.  Lagged like
    ``"cholesky"``, and the chord operator of ``"picard-chord"`` on several ranks (:func:`chord_operator`).  On one
    rank the subdomain is the whole mesh and this is the Cholesky factorisation of the Jacobian;
  - ``"bjacobi-cholesky"``: block Jacobi, each rank's diagonal block factorised by a serial Cholesky (the overlap-0
    case of the above);
  - ``"ilu"``: ILU(0) on each rank's block (block Jacobi; plain ILU on one rank);
  - ``"asm"``: additive Schwarz with overlap 1 and ILU(0) on the subdomains.

The thickness update (icesheet.thickness_solver) solves one linear system per step, :math:`(M + \delta t\,A)h = b`
(mass matrix plus advection, with SUPG): not symmetric, but dominated by the mass matrix at the Courant numbers the
model runs at, so a Krylov method with an incomplete factorisation converges in a few iterations.  Its choices,
:data:`THICKNESS_LINEAR_SOLVERS`: ``"gmres-ilu"`` (the default, :data:`ITERATIVE_THICKNESS_SOLVER`) or ``"mumps"``
(:data:`DIRECT_SOLVER`, a new LU factorisation every step; the seed's choice).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PicardOptions", "ADJOINT_MODES", "STRATEGIES", "DEFAULT_STRATEGY", "DEFAULT_INEXACT_STRATEGY",
           "LINE_SEARCHES", "LINEAR_SOLVERS",
           "PRECONDITIONERS", "DIRECT_SOLVER", "ADAPTIVE_LAG", "ASM_OVERLAP", "linear_solver_parameters",
           "resolved_preconditioner", "exact_factorisation", "chord_operator", "default_chord",
           "THICKNESS_LINEAR_SOLVERS", "ITERATIVE_THICKNESS_SOLVER", "thickness_solver_parameters"]

DIRECT_SOLVER = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
#: GMRES (restart 30), right-preconditioned by ILU(0) on each rank's diagonal block (block Jacobi; Saad 2003,
#: *Iterative Methods for Sparse Linear Systems*, SIAM, sections 6.5, 9.3.2 and 10.3).  Right preconditioning makes
#: the tested norm that of the true residual.  Firedrake solves for the correction from the initial guess (the current
#: thickness), so ``ksp_rtol`` is relative to the residual of the current thickness: the step's tendency, not the
#: thickness.  ``ksp_atol`` 0: a fixed absolute floor would carry units (m^3/yr per node) that change with the cell
#: size and the time step; a zero residual (a steady state to the last bit) stops at iteration 0 anyway.  Chosen by
#: benchmarks/bench_thickness.py (docs/solvers.md, "Thickness solve"); ``ksp_max_it`` bounds a stagnating solve, after
#: which icesheet.thickness_solver falls back to ``DIRECT_SOLVER``.
ITERATIVE_THICKNESS_SOLVER = {"ksp_type": "gmres", "ksp_pc_side": "right", "pc_type": "bjacobi", "sub_pc_type": "ilu",
                              "ksp_rtol": 1.0e-12, "ksp_atol": 0.0, "ksp_max_it": 200}
#: the thickness update's linear solvers (the first is the default)
THICKNESS_LINEAR_SOLVERS = ("gmres-ilu", "mumps")


def thickness_solver_parameters(name: str) -> dict:
    """PETSc options of the thickness update's linear solver ``name`` (one of :data:`THICKNESS_LINEAR_SOLVERS`)."""
    if name not in THICKNESS_LINEAR_SOLVERS:
        raise ValueError(f"thickness_linear_solver = {name!r}: allowed values are {THICKNESS_LINEAR_SOLVERS}")
    return dict(ITERATIVE_THICKNESS_SOLVER if name == "gmres-ilu" else DIRECT_SOLVER)

LINEAR_SOLVERS = ("cholesky", "mumps", "cg", "gmres")

_PRECONDITIONERS = {
    "gamg": {"pc_type": "gamg"},
    "ilu": {"pc_type": "bjacobi", "sub_pc_type": "ilu"},
    "asm": {"pc_type": "asm", "pc_asm_overlap": 1, "sub_pc_type": "ilu"},
    "lu": {"pc_type": "lu", "pc_factor_mat_solver_type": "mumps"},
    "cholesky": {"pc_type": "cholesky"},
}
#: subdomain overlap of ``"asm-cholesky"`` (layers of the matrix graph; chosen by benchmarks/bench_velocity.py)
ASM_OVERLAP = 2
_LOCAL_CHOLESKY = ("asm-cholesky", "bjacobi-cholesky")
#: the direct linear solvers (a factorisation of the whole matrix, applied exactly)
_DIRECT = ("cholesky", "mumps")
#: the Krylov preconditioners the chord iteration accepts as its operator (:func:`chord_operator`)
_CHORD_PRECONDITIONERS = ("auto", "cholesky", "lu") + _LOCAL_CHOLESKY
PRECONDITIONERS = ("auto",) + tuple(_PRECONDITIONERS) + _LOCAL_CHOLESKY


def _either(names: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the allowed values of an error message."""
    return ", ".join(map(repr, names[:-1])) + f" or {names[-1]!r}"


def resolved_preconditioner(preconditioner: str, ranks: int) -> str:
    """``"auto"`` (the default; chosen by benchmarks/bench_velocity.py) is ``"cholesky"`` on one rank, where CHOLMOD
    factorises the whole Jacobian, and ``"asm-cholesky"`` on more, where every rank factorises its own subdomain;
    any other name is itself."""
    if preconditioner != "auto":
        return preconditioner
    return "cholesky" if ranks == 1 else "asm-cholesky"


def exact_factorisation(linear_solver: str, preconditioner: str, ranks: int) -> bool:
    """Whether the preconditioner of ``linear_solver`` (a direct solver's factorisation, or a Krylov method's
    ``preconditioner``) applied to a vector is an exact solve with the matrix it was built from: a Cholesky or LU
    factorisation of the whole matrix, which the subdomain factorisations are on one rank only."""
    if linear_solver in _DIRECT:
        return True
    preconditioner = resolved_preconditioner(preconditioner, ranks)
    return preconditioner in ("cholesky", "lu") or (preconditioner in _LOCAL_CHOLESKY and ranks == 1)


def chord_operator(linear_solver: str, preconditioner: str) -> bool:
    """Whether strategy ``"picard-chord"`` accepts the preconditioner of ``linear_solver`` as its chord operator on any
    rank count: a factorisation of the whole matrix (:func:`exact_factorisation`) or one per rank of its subdomain
    (``"asm-cholesky"``, ``"bjacobi-cholesky"``: exact on one rank, an inexact Schwarz operator on several; the chord
    iteration then converges with its own rule, icesheet.velocity_solver).  Multigrid and incomplete factorisations
    (``"gamg"``, ``"ilu"``, ``"asm"``) are refused: the chord did not converge with them (docs/solvers.md)."""
    return linear_solver in _DIRECT or preconditioner in _CHORD_PRECONDITIONERS


def default_chord(linear_solver: str, preconditioner: str, ranks: int) -> bool:
    """Whether ``strategy = "auto"`` is ``"picard-chord"``: with an exact factorisation and with additive Schwarz on
    Cholesky-factorised subdomains (``"asm-cholesky"``, the default on several ranks), where the chord was faster than
    Newton's method (docs/solvers.md); not with block Jacobi, whose chord fell back to Newton at 4 and 2 km, nor where
    the chord is refused (:func:`chord_operator`)."""
    return (exact_factorisation(linear_solver, preconditioner, ranks)
            or resolved_preconditioner(preconditioner, ranks) == "asm-cholesky")


def linear_solver_parameters(linear_solver: str = "cholesky", preconditioner: str = "cholesky",
                             rtol: float = 1.0e-6, cholesky_package: str = "mumps",
                             local_cholesky_package: str = "petsc", ranks: int = 1) -> dict:
    """PETSc options of ``linear_solver`` with ``preconditioner`` for the Krylov methods (ignored by the direct
    solvers) and relative tolerance ``rtol`` (Krylov methods; absolute tolerance 0).  ``cholesky_package`` factors
    for ``"cholesky"``: ``"cholmod"`` (SuiteSparse; one rank only) or ``"mumps"``; ``local_cholesky_package`` the
    subdomains of ``"asm-cholesky"`` and ``"bjacobi-cholesky"``: ``"cholmod"`` or ``"petsc"`` (PETSc's own);
    ``ranks``: the MPI ranks of the solve (for ``"auto"``, :func:`resolved_preconditioner`)."""
    if linear_solver not in LINEAR_SOLVERS:
        raise ValueError(f"linear_solver = {linear_solver!r}: allowed values are {LINEAR_SOLVERS}")
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(f"preconditioner = {preconditioner!r}: allowed values are {PRECONDITIONERS}")
    preconditioner = resolved_preconditioner(preconditioner, ranks)
    cholesky = {"pc_type": "cholesky", "pc_factor_mat_solver_type": cholesky_package}
    if linear_solver == "mumps":
        return dict(DIRECT_SOLVER)
    if linear_solver == "cholesky":
        return {"ksp_type": "preonly", **cholesky}
    if preconditioner in _LOCAL_CHOLESKY:
        local = {"sub_pc_type": "cholesky", "sub_pc_factor_mat_solver_type": local_cholesky_package}
        pc = ({"pc_type": "asm", "pc_asm_type": "basic", "pc_asm_overlap": ASM_OVERLAP, **local}
              if preconditioner == "asm-cholesky" else {"pc_type": "bjacobi", **local})
    else:
        pc = cholesky if preconditioner == "cholesky" else _PRECONDITIONERS[preconditioner]
    return {"ksp_type": linear_solver, "ksp_rtol": rtol, "ksp_atol": 0.0, "ksp_max_it": 1000, **pc}


ADJOINT_MODES = ("fixed-point", "unrolled")
STRATEGIES = ("picard", "anderson", "picard-newton", "anderson-newton", "newton", "picard-chord")
#: the strategy of ``strategy=None`` in the fixed-point mode with a factorisation the chord iteration is fast with (an
#: exact one, or ``"asm-cholesky"``: the defaults on one and on several ranks; :func:`default_chord`), and with any
#: other preconditioner (block Jacobi, multigrid, ILU); chosen by benchmarks/bench_velocity.py and
#: benchmarks/bench_forward.py (docs/solvers.md)
DEFAULT_STRATEGY = "picard-chord"
DEFAULT_INEXACT_STRATEGY = "picard-newton"
LINE_SEARCHES = ("bt", "nleqerr", "l2", "cp", "basic")
#: ``preconditioner_lag`` of the adaptive rule: rebuild when a Krylov solve slows down (PicardOptions)
ADAPTIVE_LAG = 0


@dataclass(frozen=True)
class PicardOptions:
    """Options of the velocity solve (strategies: icesheet.velocity_solver, docs/solvers.md).

    ``strategy=None`` means ``DEFAULT_STRATEGY`` in the fixed-point adjoint mode with an exact factorisation or
    ``"asm-cholesky"`` (:func:`default_chord`: the defaults on any rank count), ``DEFAULT_INEXACT_STRATEGY`` with
    another preconditioner, and ``"picard"`` in the unrolled mode; ``newton_finish=None`` means a Newton finish of the
    ``"picard"``/``"anderson"`` strategies in the fixed-point mode (where it is the taped solve), none in the unrolled
    mode.  ``tolerance``,
    ``residual_tolerance`` and ``max_iterations`` stop the Picard loop; ``newton_switch`` ends the Picard phase of
    the ``*-newton`` strategies (relative residual).  ``linear_tolerance`` is the relative tolerance of Krylov
    solves in the Picard loop; Newton's Krylov solves stop at the Eisenstat-Walker forcing term (Eisenstat & Walker
    1996, SIAM J. Sci. Comput. 17, choice 2 with PETSc's constants), capped at ``newton_linear_tolerance`` (PETSc's
    default cap 0.9 lets inexact steps leave Newton's basin).  ``preconditioner_lag``: with a Krylov solver, Newton
    builds its preconditioner (e.g. the Cholesky factorisation of ``preconditioner = "cholesky"``) at the first
    Jacobian of each solve and then, for a lag ``k >= 1``, only at every ``k``-th (PETSc's
    ``snes_lag_preconditioner``; 1 rebuilds it at every Jacobian); for ``0`` (``ADAPTIVE_LAG``) only after a Newton
    linear solve that needed more than ``rebuild_iterations`` Krylov
    iterations or failed.  ``keep_factorisation``: a solve that continues the time loop the solver left (its warm
    start is the velocity the previous solve converged to, bit for bit, and no adjoint solve came in between) starts
    Newton's or the chord's iterations with the last factorisation of the previous solve instead of factorising at
    its first Jacobian; a solve from a restored state factorises anew, so that it repeats its bits
    (icesheet.velocity_solver, "Kept factorisation").  ``forcing_floor``: the
    forcing terms are at least ``newton_tolerance / (2 r_k)`` (Kelley 1995, eq. 6.20; no oversolving in the last
    Newton step).  ``chord_rebuild`` and ``chord_depth``: strategy ``"picard-chord"`` with an exact factorisation
    (:func:`exact_factorisation`) factorises a new Jacobian after a chord step whose residual ratio exceeds
    ``chord_rebuild``, and Anderson-mixes the chord iterates with depth ``chord_depth``; ``chord_rebuild_inexact`` and
    ``chord_depth_inexact`` are the same with a Schwarz operator (``"asm-cholesky"``, ``"bjacobi-cholesky"`` on
    several ranks), where a step that increases the residual also rebuilds it and 1 means only that
    (icesheet.velocity_solver, docs/solvers.md)."""

    strategy: str | None = None
    tolerance: float = 1.0e-6
    residual_tolerance: float = 1.0e-6
    max_iterations: int = 100
    anderson_depth: int = 5
    newton_switch: float = 5.0e-2
    newton_finish: bool | None = None
    newton_tolerance: float = 1.0e-10
    newton_max_iterations: int = 20
    line_search: str = "bt"
    linear_solver: str = "cg"
    preconditioner: str = "auto"
    linear_tolerance: float = 1.0e-6
    newton_linear_tolerance: float = 1.0e-3
    preconditioner_lag: int = ADAPTIVE_LAG
    rebuild_iterations: int = 8
    forcing_floor: bool = True
    chord_rebuild: float = 0.6
    chord_depth: int = 5
    chord_rebuild_inexact: float = 1.0
    chord_depth_inexact: int = 10
    keep_factorisation: bool = True

    def __post_init__(self):
        for name, allowed in (("strategy", STRATEGIES), ("line_search", LINE_SEARCHES),
                              ("linear_solver", LINEAR_SOLVERS), ("preconditioner", PRECONDITIONERS)):
            value = getattr(self, name)
            if value not in allowed and not (name == "strategy" and value is None):
                raise ValueError(f"{name} = {value!r}: allowed values are {allowed}")
        for name in ("tolerance", "residual_tolerance", "newton_switch", "newton_tolerance", "linear_tolerance",
                     "newton_linear_tolerance", "chord_rebuild", "chord_rebuild_inexact"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"solver {name} = {value!r}: must be a finite number > 0")
        for name in ("chord_rebuild", "chord_rebuild_inexact"):
            if getattr(self, name) > 1:
                rebuilt = ("the Jacobian is factorised anew" if name == "chord_rebuild"
                           else "the Schwarz operator is rebuilt")
                raise ValueError(f"solver {name} = {getattr(self, name)!r}: must be <= 1 (the residual ratio of a "
                                 f"chord step above which {rebuilt})")
        for name, minimum in (("max_iterations", 1), ("newton_max_iterations", 1), ("anderson_depth", 0),
                              ("chord_depth", 0), ("chord_depth_inexact", 0), ("preconditioner_lag", 0),
                              ("rebuild_iterations", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"solver {name} = {value!r}: must be an integer >= {minimum}")
        for name in ("forcing_floor", "keep_factorisation"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"solver {name} = {getattr(self, name)!r}: must be true or false")
        if self.strategy == "picard-chord" and not chord_operator(self.linear_solver, self.preconditioner):
            raise ValueError(f"strategy = 'picard-chord' with linear_solver = {self.linear_solver!r}, preconditioner = "
                             f"{self.preconditioner!r}: the chord iteration needs a Cholesky or LU factorisation, of "
                             f"the whole matrix or of each rank's subdomain; allowed: linear_solver "
                             f"{_either(_DIRECT)}, or preconditioner {_either(_CHORD_PRECONDITIONERS)}")
        if self.newton_finish is False and self.strategy in ("picard-newton", "anderson-newton", "newton",
                                                             "picard-chord"):
            raise ValueError(f"newton_finish = off with strategy = {self.strategy!r}: that strategy ends with "
                             f"Newton's method; use 'picard' or 'anderson' for a solve without Newton")

    def resolved_strategy(self, adjoint_mode: str, ranks: int = 1) -> str:
        """The strategy that runs in ``adjoint_mode`` on ``ranks`` MPI ranks."""
        if self.strategy is not None:
            return self.strategy
        if adjoint_mode != "fixed-point":
            return "picard"
        chord = default_chord(self.linear_solver, self.preconditioner, ranks)
        return DEFAULT_STRATEGY if chord else DEFAULT_INEXACT_STRATEGY
