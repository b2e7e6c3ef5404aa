"""Mass conservation of the thickness update (icesheet.transport): with no accumulation and closed boundaries the
volume int h dx is constant to round-off, whatever the Courant number and the SUPG parameter; the scheme stays
bounded at Courant 5 and 20.  The SUPG parameters against their closed forms, and a bad choice named."""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

SIDE = 20e3  # m


def test_volume_is_conserved_by_the_full_model_in_a_closed_box():
    import firedrake
    from firedrake import as_vector, exp

    from icesheet.model import Boundaries, IceModel

    mesh = firedrake.RectangleMesh(8, 8, SIDE, SIDE)
    x, y = firedrake.SpatialCoordinate(mesh)
    bump = 600.0 + 400.0 * exp(-((x - 0.4 * SIDE) ** 2 + (y - 0.5 * SIDE) ** 2) / (0.2 * SIDE) ** 2)
    # Dirichlet u = 0 on all four sides: u . nu = 0 everywhere on the boundary.  A deep bed: the ice floats, so
    # nothing but the membrane stresses and the walls resist the spreading.
    model = IceModel(mesh, thickness=bump, bed=-2000.0, friction=0.0, rate_factor=20.0, accumulation=0.0,
                     inflow_velocity=as_vector((0.0, 0.0)), inflow_thickness=0.0,
                     boundaries=Boundaries(inflow=(1, 2, 3, 4)))
    initial, initial_thickness = model.volume(), model.thickness.dat.data_ro.copy()
    for _ in range(5):
        info = model.step(50.0)
        assert info.clamped_volume == 0.0
    assert model.volume() == pytest.approx(initial, rel=1e-12)
    assert np.abs(model.thickness.dat.data_ro - initial_thickness).max() > 10.0  # the ice did move


@pytest.mark.parametrize("supg", ["transient", "steady"])
@pytest.mark.parametrize("courant", [5.0, 20.0])
def test_transport_conserves_volume_and_stays_bounded_at_large_courant_numbers(courant, supg):
    import firedrake
    from firedrake import as_vector, exp

    from icesheet.thickness_solver import ThicknessSolver

    # Periodic in x, walls at y = 0 and y = SIDE, uniform flow along x: div u = 0 and u . nu = 0 exactly on the
    # walls, so the domain is closed.  A bump of 50 m on 100 m of ice is carried through ten steps.
    cells = 16
    mesh = firedrake.PeriodicRectangleMesh(cells, cells, SIDE, SIDE, direction="x")
    x, y = firedrake.SpatialCoordinate(mesh)
    speed = 1000.0
    velocity = firedrake.Function(firedrake.VectorFunctionSpace(mesh, "CG", 1)).interpolate(as_vector((speed, 0.0)))
    bump = 100.0 + 50.0 * exp(-((x - 0.5 * SIDE) ** 2 + (y - 0.5 * SIDE) ** 2) / (0.15 * SIDE) ** 2)
    thickness = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1)).interpolate(bump)
    solver = ThicknessSolver(thickness, velocity, accumulation=firedrake.Constant(0.0),
                             inflow_thickness=firedrake.Constant(0.0), supg=supg)
    volume = firedrake.assemble(thickness * firedrake.dx)
    high = thickness.dat.data_ro.max()
    for _ in range(10):
        assert solver.solve(courant * SIDE / cells / speed) == 0.0
    assert firedrake.assemble(thickness * firedrake.dx) == pytest.approx(volume, rel=1e-12)
    assert thickness.dat.data_ro.min() > 99.0  # no undershoot worth the name
    assert thickness.dat.data_ro.max() <= high  # no overshoot


def test_the_supg_parameters_match_their_closed_forms_and_only_the_transient_one_shrinks_with_the_step():
    import firedrake
    from firedrake import as_vector

    from icesheet.transport import SPEED_FLOOR, supg_parameter

    # Uniform flow on a structured mesh of right triangles: every cell's diameter is its hypotenuse.
    cells, speed = 10, 500.0
    mesh = firedrake.RectangleMesh(cells, cells, SIDE, SIDE)
    velocity = firedrake.Function(firedrake.VectorFunctionSpace(mesh, "CG", 1)).interpolate(as_vector((speed, 0.0)))
    diameter = SIDE / cells * 2**0.5
    DG0 = firedrake.FunctionSpace(mesh, "DG", 0)
    values = {}
    for dt in (0.1, 10.0):
        for kind in ("transient", "steady"):
            tau = firedrake.Function(DG0).interpolate(supg_parameter(velocity, firedrake.Constant(dt), kind))
            values[kind, dt] = tau.dat.data_ro.copy()
        # Shakib, Hughes & Johan (1991): ((2/dt)^2 + (2|u|/dx)^2)^(-1/2); Brooks & Hughes (1982): dx / (2|u|)
        shakib = ((2 / dt) ** 2 + (2 * speed / diameter) ** 2) ** -0.5
        assert values["transient", dt] == pytest.approx(shakib, rel=1e-12)
        assert values["steady", dt] == pytest.approx(diameter / (2 * (speed**2 + SPEED_FLOOR**2) ** 0.5), rel=1e-12)
    # at a Courant number of 0.018 the transient parameter is about dt / 2, 1/57 of the steady one
    assert values["transient", 0.1] == pytest.approx(0.05, rel=1e-3)
    assert values["steady", 0.1] / values["transient", 0.1] == pytest.approx(57, rel=0.01)


def test_a_bad_supg_parameter_is_named_in_one_line():
    from icesheet.scenarios import ScenarioError, scenario_parameters
    from icesheet.transport import SUPG_PARAMETERS

    for kind in SUPG_PARAMETERS:
        assert scenario_parameters("mismip_ice1r", overrides={"solver.supg_parameter": kind})["solver"][
            "supg_parameter"] == kind
    with pytest.raises(ScenarioError) as error:
        scenario_parameters("mismip_ice1r", overrides={"solver.supg_parameter": "upwind"})
    assert str(error.value) == f"solver.supg_parameter = 'upwind': allowed values are {SUPG_PARAMETERS}"
