"""The thickness update's Krylov solve (GMRES + ILU(0), the default) against MUMPS's LU, a peer direct solver: the
same thickness to 1e-10 relative over a few steps of the marine ice stream and of MISMIP+, on one and two ranks.
A Krylov solve that fails falls back to MUMPS (icesheet.thickness_solver): the result is MUMPS's, one warning line
names the failure, the tape holds one solve block per thickness solve, and the gradient through the mixed tape (a
Krylov block, then a MUMPS one) passes pyadjoint's Taylor test."""
import logging

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

@pytest.mark.parametrize("scenario", ["marine_ice_stream", "mismip_ice0"])
def test_gmres_ilu_gives_mumps_thickness(scenario):
    from support.thickness_check import compare

    result = compare(scenario)
    assert result["fallbacks"] == 0 and 0 < result["iterations"] < 50
    assert max(result["differences"]) <= 1e-10, result
    assert min(result["changes"]) > 1e-6  # the thickness did change: the agreement is not that of a still state


def test_gmres_ilu_gives_mumps_thickness_on_two_ranks(mpi_run):
    result = mpi_run("support.thickness_check")
    assert result["ranks"] == 2 and result["fallbacks"] == 0
    assert max(result["differences"]) <= 1e-10, result


def channel(cells: int = 12):
    """A 100 km x 20 km channel, inflow at x = 0, flow along x accelerating downstream; a thickness with a bump."""
    import firedrake
    from firedrake import as_vector, exp

    mesh = firedrake.RectangleMesh(cells, 4, 100e3, 20e3)
    x, y = firedrake.SpatialCoordinate(mesh)
    velocity = firedrake.Function(firedrake.VectorFunctionSpace(mesh, "CG", 1)).interpolate(
        as_vector((200.0 + 600.0 * x / 100e3, 0.0)))
    thickness = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1)).interpolate(
        500.0 + 100.0 * exp(-((x - 30e3) / 10e3) ** 2))
    return thickness, velocity


def break_krylov(solver) -> None:
    """From now on the solver's GMRES stops after one iteration, failing (DIVERGED_ITS), as a stagnating solve
    would; the options it taped with (and the adjoint of its taped solves) are unchanged."""
    solver._solver.snes.getKSP().setTolerances(max_it=1)


def test_a_failed_krylov_solve_falls_back_to_mumps_and_logs_one_line(caplog):
    from icesheet.thickness_solver import ThicknessSolver

    thickness, velocity = channel()
    reference = thickness.copy(deepcopy=True)
    direct = ThicknessSolver(reference, velocity, accumulation=0.3, inflow_thickness=500.0, linear_solver="mumps")
    solver = ThicknessSolver(thickness, velocity, accumulation=0.3, inflow_thickness=500.0)
    for step in range(3):
        if step == 1:
            break_krylov(solver)
        with caplog.at_level(logging.WARNING, logger="icesheet.thickness_solver"):
            solver.solve(20.0)
        direct.solve(20.0)
        assert solver.fallbacks == (0 if step == 0 else 1)
        assert solver.iterative == (step == 0)
        difference = np.linalg.norm(thickness.dat.data_ro - reference.dat.data_ro)
        assert difference <= 1e-10 * np.linalg.norm(reference.dat.data_ro)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0] == ("thickness solve: gmres + bjacobi failed (DIVERGED_MAX_IT after 1 iterations); repeating "
                           "it with MUMPS's LU, which this thickness solver uses from now on")


def test_a_fallback_leaves_one_solve_block_per_solve_and_a_gradient_passing_the_taylor_test():
    # Two steps, the first taped with GMRES, the second failing and repeated with MUMPS: the failed attempt's block
    # (added by Firedrake before it solves) must be gone, and the gradient of J = int h^2 dx with respect to the
    # accumulation a must have a second-order Taylor remainder through both blocks' adjoints.
    import firedrake
    from firedrake.adjoint import (Control, ReducedFunctional, continue_annotation, get_working_tape,
                                   pause_annotation, taylor_test)
    from firedrake.adjoint_utils.blocks import NonlinearVariationalSolveBlock
    from pyadjoint.tape import Tape, set_working_tape

    from icesheet.thickness_solver import ThicknessSolver

    thickness, velocity = channel()
    accumulation = firedrake.Function(thickness.function_space(), name="accumulation").assign(0.3)
    set_working_tape(Tape())
    continue_annotation()
    try:
        solver = ThicknessSolver(thickness, velocity, accumulation=accumulation, inflow_thickness=500.0)
        solver.solve(20.0)
        break_krylov(solver)
        solver.solve(20.0)
        J = firedrake.assemble(thickness**2 * firedrake.dx)
    finally:
        pause_annotation()
    assert solver.fallbacks == 1
    blocks = get_working_tape().get_blocks()
    solves = [block for block in blocks if isinstance(block, NonlinearVariationalSolveBlock)]
    assert len(solves) == 2 and all(len(block.get_outputs()) == 1 for block in solves)
    assert sum(len(step) for step in blocks.steps) == len(blocks)
    rf = ReducedFunctional(J, Control(accumulation))
    direction = firedrake.Function(accumulation.function_space()).interpolate(
        0.1 * firedrake.sin(firedrake.SpatialCoordinate(accumulation.function_space().mesh())[0] / 7e3))
    assert taylor_test(rf, accumulation, direction) > 1.95
    set_working_tape(Tape())


def test_a_bad_thickness_linear_solver_is_named_in_one_line():
    from icesheet.errors import ScenarioError
    from icesheet.scenarios import scenario_parameters
    from icesheet.solver_options import THICKNESS_LINEAR_SOLVERS

    with pytest.raises(ScenarioError) as error:
        scenario_parameters("marine_ice_stream", overrides={"solver.thickness_linear_solver": "cg"})
    assert str(error.value) == ("solver.thickness_linear_solver = 'cg': allowed values are "
                                f"{THICKNESS_LINEAR_SOLVERS}")
