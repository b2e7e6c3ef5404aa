"""The fixed-point adjoint of the velocity solve passes pyadjoint's Taylor test (second-order remainder, docs/model.md
section 6), the unrolled adjoint (every Picard solve taped) gives the same gradient, the fixed-point tape does not
grow with the Picard iterations (Christianson 1994, Optim. Methods Softw. 3; docs/model.md, section 6), and every
strategy and linear solver gives the same fixed-point gradient (one adjoint solve at the same root; docs/solvers.md)."""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


def taped_gradient(adjoint_mode, steps, taylor, **model_options):
    """J = int h^2 dx after ``steps`` steps of a coarse marine ice stream; control: log friction."""
    import firedrake
    from firedrake.adjoint import Control, ReducedFunctional, continue_annotation, get_working_tape, \
        pause_annotation, taylor_test
    from pyadjoint.tape import Tape, set_working_tape

    from icesheet.scenarios import build_model, scenario_parameters

    set_working_tape(Tape())
    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": 40e3})  # 2 cells across
    model = build_model("marine_ice_stream", parameters, adjoint_mode=adjoint_mode, friction_parameterisation="log",
                        **model_options)
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
    rate = taylor_test(rf, theta, direction) if taylor else None
    set_working_tape(Tape())
    return {"picard": picard, "solves": solves, "gradient": gradient, "rate": rate}


def test_fixed_point_adjoint_passes_the_taylor_test_and_matches_the_unrolled_gradient():
    # Two steps: the second step's Picard loop overwrites the velocity without taping it, and the first step's
    # adjoint must still see its own converged velocity.
    fixed = taped_gradient("fixed-point", steps=2, taylor=True)
    unrolled = taped_gradient("unrolled", steps=2, taylor=False)
    assert fixed["rate"] > 1.95
    assert fixed["solves"] == 2 * 2  # one Newton solve and one thickness solve per step, whatever the Picard count
    assert unrolled["solves"] == unrolled["picard"] + 2 > fixed["solves"]
    scale = np.linalg.norm(fixed["gradient"])
    assert np.linalg.norm(fixed["gradient"] - unrolled["gradient"]) <= 1e-4 * scale


@pytest.mark.parametrize("options", [{"strategy": "picard"}, {"strategy": "anderson-newton"}, {"strategy": "newton"},
                                     {"linear_solver": "cg", "preconditioner": "gamg"}],
                         ids=lambda options: "+".join(options.values()))
def test_every_strategy_gives_the_default_fixed_point_gradient(options):
    from icesheet.velocity_solver import PicardOptions

    default = taped_gradient("fixed-point", steps=2, taylor=False)
    other = taped_gradient("fixed-point", steps=2, taylor=False, picard=PicardOptions(**options))
    assert other["solves"] == default["solves"] == 2 * 2
    scale = np.linalg.norm(default["gradient"])
    assert np.linalg.norm(other["gradient"] - default["gradient"]) <= 1e-8 * scale


def test_the_adjoint_solve_refactorises_newtons_preconditioner():
    # The default adjoint solve owns no factorisation: it copies its operator (the Jacobian at the root) into Newton's
    # Jacobian matrix and refactorises Newton's preconditioner in place, then CG converges in one iteration.
    import firedrake
    from firedrake.adjoint import Control, ReducedFunctional, continue_annotation, pause_annotation
    from pyadjoint.tape import Tape, set_working_tape

    from icesheet.scenarios import build_model, scenario_parameters

    set_working_tape(Tape())
    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": 20e3})
    model = build_model("marine_ice_stream", parameters, friction_parameterisation="log")
    shared = model.velocity_solver._shared_factorisation
    model.step(5.0)
    continue_annotation()
    try:
        model.step(5.0)
        J = firedrake.assemble(model.thickness**2 * firedrake.dx)
    finally:
        pause_annotation()
    after = model.state_arrays()
    for _ in range(2):
        ReducedFunctional(J, Control(model.log_friction)).derivative()
    assert shared.refactorisations == 2
    assert 1 <= shared.applications <= 2  # CG iterations + 1
    set_working_tape(Tape())
    # The next step continues the time loop from the taped step's result, whose velocity the solver would otherwise
    # continue with its kept factorisation; after the adjoint it factorises anew, as a new solver does, bit for bit.
    steps = []
    for _ in range(2):
        model.set_state_arrays(after)
        model.step(5.0)
        steps.append(model.state_arrays())
        model.reset_solvers()
    for a, b in zip(*steps):
        assert np.array_equal(a, b)
