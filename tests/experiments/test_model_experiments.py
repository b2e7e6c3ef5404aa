"""The fixed-point adjoint's tape does not grow with the Picard iterations, the unrolled one does
(Christianson 1994; docs/model.md, section 6): the property behind experiments/picard_adjoint.py, on a tiny mesh."""
import pytest

pytestmark = pytest.mark.firedrake


def test_fixed_point_tape_is_independent_of_picard_iterations():
    from experiments.ice_problem import IceProblem, build_problem
    from experiments.picard_adjoint import one_step_tape

    problem = IceProblem(cell_size=40000.0, steps=1)
    taped = {}
    for mode in ("fixed-point", "unrolled"):
        for tolerance in (1e-4, 1e-8):
            model = build_problem(problem, adjoint_mode=mode,
                                  **{"solver.strategy": "picard", "solver.tolerance": tolerance,
                                     "solver.residual_tolerance": tolerance})
            taped[mode, tolerance] = one_step_tape(model, problem.dt)
    loose, tight = taped["fixed-point", 1e-4], taped["fixed-point", 1e-8]
    assert tight["picard_iterations"] > loose["picard_iterations"]
    assert tight["tape_bytes"] == loose["tape_bytes"] and tight["tape_blocks"] == loose["tape_blocks"]
    assert taped["unrolled", 1e-8]["tape_bytes"] > taped["unrolled", 1e-4]["tape_bytes"] > loose["tape_bytes"]
