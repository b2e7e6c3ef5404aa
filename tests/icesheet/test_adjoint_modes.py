"""Both adjoint modes of the Picard loop give gradients that pass pyadjoint's Taylor test (second-order remainder,
references.md section 7), agree with each other, and the fixed-point tape does not grow with the Picard iterations
(Christianson 1994; references.md section 4)."""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


def taped_gradient(adjoint_mode, steps=1):
    """J = int h^2 dx after ``steps`` steps of a coarse marine ice stream; control: log friction."""
    import firedrake
    from firedrake.adjoint import Control, ReducedFunctional, continue_annotation, get_working_tape, \
        pause_annotation, taylor_test
    from pyadjoint.tape import Tape, set_working_tape

    from icesheet.scenarios import build_model, scenario_parameters

    set_working_tape(Tape())
    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": 80e3})
    model = build_model("marine_ice_stream", parameters, adjoint_mode=adjoint_mode, friction_parameterisation="log")
    continue_annotation()
    try:
        picard = sum(model.step(10.0).picard_iterations for _ in range(steps))
        J = firedrake.assemble(model.thickness**2 * firedrake.dx)
    finally:
        pause_annotation()
    tape = get_working_tape()
    solves = sum(type(block).__name__.endswith("SolveBlock") for block in tape.get_blocks())
    theta = model.log_friction
    rf = ReducedFunctional(J, Control(theta))
    gradient = rf.derivative().riesz_representation("l2").dat.data_ro.copy()
    direction = firedrake.Function(theta.function_space()).interpolate(0.2 * firedrake.Constant(1.0))
    rate = taylor_test(rf, theta, direction)
    set_working_tape(Tape())
    return {"picard": picard, "solves": solves, "gradient": gradient, "rate": rate}


def test_fixed_point_and_unrolled_adjoints():
    fixed, unrolled = taped_gradient("fixed-point"), taped_gradient("unrolled")
    assert fixed["rate"] > 1.95 and unrolled["rate"] > 1.95
    # One Newton solve and one thickness solve per step on the fixed-point tape; every Picard solve on the other.
    assert fixed["solves"] == 2  # one step
    assert unrolled["solves"] == unrolled["picard"] + 1 > fixed["solves"]
    scale = np.linalg.norm(fixed["gradient"])
    assert np.linalg.norm(fixed["gradient"] - unrolled["gradient"]) <= 1e-4 * scale
