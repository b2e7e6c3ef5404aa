"""PETSc log-event counts shared by the benchmarks (bench_velocity, bench_forward): how often the factorisation
events ran on this rank (one per subdomain and rank for the Schwarz preconditioners)."""
from __future__ import annotations

#: PETSc's log events of the symbolic and the numeric LU and Cholesky factorisations
SYMBOLIC_FACTORISATION_EVENTS = ("MatLUFactorSym", "MatCholFctrSym")
NUMERIC_FACTORISATION_EVENTS = ("MatLUFactorNum", "MatCholFctrNum")


def event_count(names: tuple[str, ...]) -> int:
    """How often the PETSc log events ``names`` ran on this rank, summed (logging must have begun:
    ``PETSc.Log.begin()``)."""
    from firedrake.petsc import PETSc

    return sum(PETSc.Log.Event(name).getPerfInfo()["count"] for name in names)
