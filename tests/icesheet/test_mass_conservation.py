"""Mass conservation of the thickness update (icesheet.transport): with no accumulation and closed boundaries the
volume int h dx is constant to round-off, whatever the Courant number; the scheme stays bounded at Courant 5 and 20."""
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


@pytest.mark.parametrize("courant", [5.0, 20.0])
def test_transport_conserves_volume_and_stays_bounded_at_large_courant_numbers(courant):
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
                             inflow_thickness=firedrake.Constant(0.0))
    volume = firedrake.assemble(thickness * firedrake.dx)
    high = thickness.dat.data_ro.max()
    for _ in range(10):
        assert solver.solve(courant * SIDE / cells / speed) == 0.0
    assert firedrake.assemble(thickness * firedrake.dx) == pytest.approx(volume, rel=1e-12)
    assert thickness.dat.data_ro.min() > 99.0  # no undershoot worth the name
    assert thickness.dat.data_ro.max() <= high  # no overshoot
