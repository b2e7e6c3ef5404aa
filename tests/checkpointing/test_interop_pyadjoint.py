"""Vanilla pyadjoint runs our exported schedules: the gradient through ``tape.enable_checkpointing`` equals the
un-checkpointed gradient to round-off (docs/model.md, section 6).

The model: 20 implicit steps of a nonlinear heat equation on an 8 x 8 mesh,
``(u - u_) / dt + div(kappa (1 + u^2) grad u) = 0``, with ``J = sum_n int u_n^2 dx``.  The diffusivity depends on
``u`` so that the adjoint needs the right forward states: restoring a wrong checkpoint changes the gradient.
"""
import numpy as np
import pytest

from checkpointing.interop import ExportedSchedule
from checkpointing.planners import plan
from checkpointing.platform import Platform
from checkpointing.simulator import simulate

pytestmark = pytest.mark.firedrake  # Firedrake is imported inside the tests, so the module collects without it

MODEL_STEPS = 20           # pyadjoint time steps (checkpoint_schedules' max_n)
CHAIN = MODEL_STEPS - 1    # our chain length l


@pytest.fixture(autouse=True)
def annotation():
    from firedrake.adjoint import continue_annotation, get_working_tape, pause_annotation

    continue_annotation()
    yield
    get_working_tape().clear_tape()
    pause_annotation()


def run(schedule, checkpoint_dir=None):
    """Tape the model (with ``schedule`` if given); return J, dJ/d(ic), J re-evaluated, dJ again."""
    from checkpoint_schedules import StorageType
    from firedrake import (Constant, Function, FunctionSpace, NonlinearVariationalProblem,
                           NonlinearVariationalSolver, SpatialCoordinate, TestFunction, UnitSquareMesh, assemble, dx,
                           grad, inner, pi, sin)
    from firedrake.adjoint import (Control, ReducedFunctional, checkpointable_mesh, enable_disk_checkpointing,
                                   get_working_tape)

    tape = get_working_tape()
    tape.clear_tape()
    mesh = UnitSquareMesh(8, 8, name="mesh")
    if schedule is not None:
        if schedule.uses_storage_type(StorageType.DISK):  # pyadjoint's disk tier needs these
            enable_disk_checkpointing(dirname=str(checkpoint_dir))  # not the cwd: nothing left behind
            mesh = checkpointable_mesh(mesh)
        tape.enable_checkpointing(schedule)
    V = FunctionSpace(mesh, "CG", 1)
    x, y = SpatialCoordinate(mesh)
    ic = Function(V, name="ic").interpolate(sin(pi * x) * sin(pi * y))
    u_, u, v = Function(V), Function(V), TestFunction(V)
    u_.assign(ic)
    dt, kappa = Constant(0.01), Constant(0.5)
    F = ((u - u_) / dt * v + kappa * (1 + u**2) * inner(grad(u), grad(v))) * dx
    solver = NonlinearVariationalSolver(NonlinearVariationalProblem(F, u))
    J = 0.0
    for _ in tape.timestepper(iter(range(MODEL_STEPS))):
        solver.solve()
        u_.assign(u)
        J += assemble(u_ * u_ * dx)
    Jhat = ReducedFunctional(J, Control(ic))
    first = Jhat.derivative().dat.data_ro.copy()
    again = Jhat(ic)
    second = Jhat.derivative().dat.data_ro.copy()
    return J, first, again, second


@pytest.fixture(scope="module")
def reference():
    from firedrake.adjoint import continue_annotation, get_working_tape

    continue_annotation()
    result = run(None)
    get_working_tape().clear_tape()
    return result


@pytest.mark.parametrize("algorithm, levels", [("revolve", "3:0:0"), ("store-all", "inf:0:0"),
                                               ("hrevolve", "1:0:0,2:0.5:0.5")])
def test_exported_schedule_gives_the_store_all_gradient(reference, algorithm, levels, tmp_path):
    from firedrake.adjoint import pause_disk_checkpointing

    platform = Platform.from_spec(levels)
    ours = plan(algorithm, CHAIN, platform)
    simulate(ours, platform, CHAIN)
    try:
        J, grad1, J_again, grad2 = run(ExportedSchedule(ours, CHAIN), tmp_path)
    finally:
        pause_disk_checkpointing()
    J0, grad0 = reference[0], reference[1]
    assert J == pytest.approx(J0, rel=1e-12) and J_again == pytest.approx(J0, rel=1e-12)
    for grad in (grad1, grad2):
        assert np.linalg.norm(grad - grad0) <= 1e-10 * np.linalg.norm(grad0)
