"""The SIA model (icesheet.sia) against exact solutions of Bueler et al. (2005, J. Glaciol. 51(173)):
Test B (Halfar's 1981 similarity solution) and Test A (steady dome under uniform accumulation).

Oracles: the closed forms of the paper (docs/model.md, section 7), t0 = 422.45 years quoted there, the SI values of
the paper (unit conversion checked independently of icesheet.constants), Halfar's volume conservation and the
self-similar velocity u = r / (18 t) that follows from it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

pytestmark = pytest.mark.firedrake

# Firedrake is imported inside the tests, so that the pure-Python run (-m "not firedrake") can collect this file.


def test_halfar_parameters_in_model_units():
    """A = 1e-16 Pa^-3 a^-1, rho = 910 kg/m^3, g = 9.81 m/s^2 give the paper's Gamma (SI per annum) and t0."""
    from icesheet.sia_exact import HalfarDome

    dome = HalfarDome()
    assert dome.rate_factor == pytest.approx(100.0, rel=1e-14)
    assert dome.density * dome.gravity == pytest.approx(910.0 * 9.81 * 1e-6, rel=1e-14)  # MPa per metre
    gamma_si = 2 * 1e-16 * (910.0 * 9.81) ** 3 / 5  # m^-3 a^-1, straight from Pa and kg m^-3
    assert dome.flux_coefficient == pytest.approx(gamma_si, rel=1e-12)
    assert dome.characteristic_time == pytest.approx(422.45, abs=0.01)
    assert dome.margin_radius(dome.characteristic_time) == pytest.approx(750e3)
    assert dome.thickness(dome.characteristic_time, 0.0) == pytest.approx(3600.0)


def test_exact_solution_parameters_are_checked():
    from icesheet.sia_exact import HalfarDome, SteadyDome

    with pytest.raises(ValueError, match="dome_thickness"):
        HalfarDome(dome_thickness=0.0)
    with pytest.raises(ValueError, match="accumulation"):
        SteadyDome(accumulation=-0.3)


def test_halfar_volume_is_the_integral_of_the_profile():
    from icesheet.sia_exact import HalfarDome

    dome = HalfarDome()
    for t in (dome.characteristic_time, 3 * dome.characteristic_time):
        quadrature, _ = integrate.quad(lambda r: 2 * math.pi * r * dome.thickness(t, r), 0.0, dome.margin_radius(t),
                                       limit=200)
        assert dome.volume == pytest.approx(quadrature, rel=1e-7)


def halfar_model(cells: int, **overrides):
    """The halfar_dome scenario with ``cells`` cells per side, and its exact solution."""
    from icesheet import scenarios
    from icesheet.sia_setups import halfar_dome, halfar_dome_exact

    parameters = scenarios.scenario_parameters("halfar_dome", overrides={"mesh.cell_size": 900e3 / cells,
                                                                         **overrides})
    return halfar_dome(parameters), halfar_dome_exact(parameters)


def test_sia_velocity_is_self_similar():
    """The SIA velocity of the exact t0 profile is r / (18 t0) radially: relative L2 error inside 0.6 R0 falls
    like h (measured 0.173, 0.087, 0.044, 0.022 for 12, 24, 48, 96 cells per side)."""
    from firedrake import SpatialCoordinate, as_vector, assemble, conditional, dx, inner, sqrt

    errors = []
    for cells in (24, 48):
        model, exact = halfar_model(cells)
        x, y = SpatialCoordinate(model.mesh)
        velocity = model.output_fields()["velocity"]
        similarity = as_vector((x, y)) / (18 * exact.characteristic_time)
        inside = conditional(sqrt(x**2 + y**2) < 0.6 * exact.dome_radius, 1.0, 0.0)
        difference = velocity - similarity
        errors.append(math.sqrt(assemble(inside * inner(difference, difference) * dx)
                                / assemble(inside * inner(similarity, similarity) * dx)))
    assert errors[1] < 0.06
    assert math.log2(errors[0] / errors[1]) > 0.9


def halfar_run(cells: int, duration: float, steps: int):
    """Quarter-domain Halfar run from t0 for ``duration`` years: (relative L1 error of H at the end,
    relative error of the final volume against the exact volume, relative volume change over the run,
    total volume added by the bound relative to the volume)."""
    from firedrake import SpatialCoordinate, assemble, dx, sqrt

    model, exact = halfar_model(cells, **{"time.dt": duration / steps, "time.steps": steps})
    start_volume = model.volume()
    records = model.run(steps, duration / steps)
    x, y = SpatialCoordinate(model.mesh)
    exact_end = exact.thickness(exact.characteristic_time + duration, sqrt(x**2 + y**2))
    error = assemble(abs(model.thickness - exact_end) * dx) / assemble(exact_end * dx)
    quarter_volume = exact.volume / 4
    return (error, abs(model.volume() - quarter_volume) / quarter_volume,
            abs(model.volume() - start_volume) / quarter_volume,
            sum(record["clamped_volume"] for record in records) / quarter_volume)


def test_halfar_dome_converges():
    """From the exact profile at t0 to t0 + 400 yr, refining h and dt together (12, 24, 48 cells per side of
    900 km, dt = 100, 50, 25 yr). Measured relative L1 errors 0.0297, 0.0113, 0.0047 (slopes 1.39, 1.28; 0.0020
    and slope 1.21 at 96 cells): the margin, where H ~ (R - r)^(3/7), limits the rate. The volume is conserved
    as Halfar's is (the scheme is conservative and the bound adds nothing); its error against the exact volume is
    that of interpolating the t0 profile, 0.93 %, 0.20 %, 0.039 % (0.019 % at 96 cells)."""
    results = np.array([halfar_run(cells, 400.0, steps) for cells, steps in ((12, 4), (24, 8), (48, 16))])
    errors, volume_errors, volume_changes, clamped = results.T
    assert np.all(np.log2(errors[:-1] / errors[1:]) > 1.0)
    assert errors[-1] < 0.006
    assert np.all(volume_changes < 1e-10)
    assert np.all(np.abs(clamped) < 1e-10)
    assert np.log2(volume_errors[0] / volume_errors[-1]) / 2 > 1.5
    assert volume_errors[-1] < 1e-3


def test_bad_input_is_rejected_naming_the_field():
    import firedrake

    from icesheet.sia import SIAModel

    model, _ = halfar_model(4)
    with pytest.raises(ValueError, match="dt"):
        model.step(0.0)
    with pytest.raises(ValueError, match="steps"):
        model.run(-1, 10.0)
    vector_space = firedrake.VectorFunctionSpace(model.mesh, "CG", 1)
    with pytest.raises(ValueError, match="thickness"):
        SIAModel(firedrake.Function(vector_space), bed=0.0, accumulation=0.0, rate_factor=1.0)
    with pytest.raises(ValueError, match="thickness"):
        SIAModel(firedrake.Function(model.thickness_space).assign(-1.0), bed=0.0, accumulation=0.0, rate_factor=1.0)
    with pytest.raises(ValueError, match="rate_factor"):
        SIAModel(model.thickness, bed=0.0, accumulation=0.0, rate_factor=0.0)
    with pytest.raises(ValueError, match="dt"):
        model.step(float("nan"))
    with pytest.raises(ValueError, match="density"):
        SIAModel(model.thickness, bed=0.0, accumulation=0.0, rate_factor=1.0, density=-1.0)


@pytest.mark.mpi
def test_halfar_dome_same_on_two_ranks(mpi_run):
    """Volumes and final norms of 3 steps agree on 1 and 2 ranks (MUMPS LU: up to round-off)."""
    from support.parallel_check import fingerprint

    arguments = ("--scenario", "halfar_dome", "--steps", "3", "--cell-size", "50000")
    parallel = mpi_run("support.parallel_check", *arguments)
    serial = fingerprint("halfar_dome", steps=3, cell_size=50000.0)
    assert parallel["ranks"] == 2 and serial["ranks"] == 1
    assert parallel["volume"] == pytest.approx(serial["volume"], rel=1e-10)
    assert parallel["thickness_norm"] == pytest.approx(serial["thickness_norm"], rel=1e-9)
    assert parallel["velocity_norm"] == pytest.approx(serial["velocity_norm"], rel=1e-8)


def steady_dome_error(cells: int, steps: int = 20, dt: float = 1000.0) -> tuple[float, float]:
    """Test A on the quarter domain [0, 900 km]^2: from the exact profile, backward Euler to steady state under
    a = M0 inside the margin L and a = -1000 m/yr beyond (the ablation holds the margin at L, as the paper's
    fixed margin does). Returns the relative L1 error and the relative volume change of the last step."""
    import firedrake
    from firedrake import SpatialCoordinate, assemble, conditional, dx, sqrt

    from icesheet.sia import SIAModel
    from icesheet.sia_exact import SteadyDome

    dome = SteadyDome()
    mesh = firedrake.SquareMesh(cells, cells, 900e3)
    x, y = SpatialCoordinate(mesh)
    r = sqrt(x**2 + y**2)
    thickness = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1)).interpolate(dome.thickness(r))
    accumulation = conditional(r < dome.margin_radius, dome.accumulation, -1000.0)
    model = SIAModel(thickness, bed=0.0, accumulation=accumulation, rate_factor=dome.rate_factor,
                     density=dome.density)
    records = model.run(steps, dt)
    exact = dome.thickness(r)
    error = assemble(abs(model.thickness - exact) * dx) / assemble(exact * dx)
    return error, abs(records[-1]["volume"] - records[-2]["volume"]) / records[-1]["volume"]


def test_steady_dome_converges():
    """Bueler et al. (2005) Test A. Measured relative L1 errors 0.230, 0.113, 0.055 (0.029 at 96 cells) for 12, 24,
    48 cells per side: first order, the cells straddling the margin (where the nodal accumulation switches to
    ablation) dominating. After 20 steps of 1000 yr the volume changes by < 2e-7 per step (steady)."""
    results = np.array([steady_dome_error(cells) for cells in (12, 24, 48)])
    errors, last_changes = results.T
    assert np.all(last_changes < 1e-6)
    assert np.all(np.log2(errors[:-1] / errors[1:]) > 0.85)
    assert errors[-1] < 0.06


def test_taped_steps_pass_taylor_tests():
    """J = int H^2 dx after 3 taped Halfar steps: the Taylor remainder |J(m + eps h) - J(m) - eps dJ.h| falls like
    eps^2 (docs/model.md, section 6) for the rate factor, the accumulation and the initial thickness as controls
    (measured 2.000; directions >= 0, so that the bound H >= 0 stays inactive)."""
    import firedrake
    from firedrake import assemble, dx
    from firedrake.adjoint import (Control, ReducedFunctional, Tape, continue_annotation, pause_annotation,
                                   set_working_tape, taylor_test)

    with set_working_tape(Tape()):
        model, _ = halfar_model(12)
        continue_annotation()
        try:
            names = ("rate_factor", "accumulation", "thickness")
            controls = {name: Control(getattr(model, name)) for name in names}
            values = {name: getattr(model, name).copy(deepcopy=True) for name in names}
            model.run(3, 50.0)
            functional = assemble(model.thickness**2 * dx)
        finally:
            pause_annotation()
        rng = np.random.default_rng(3)
        for name, scale in (("rate_factor", 1.0), ("accumulation", 0.1), ("thickness", 10.0)):
            direction = firedrake.Function(values[name].function_space())
            direction.dat.data[:] = scale * rng.uniform(0.0, 1.0, direction.dat.data.shape)
            if name == "thickness":  # perturb the ice only: the bound stays inactive
                direction.dat.data[values[name].dat.data_ro <= 0] = 0.0
            rate = taylor_test(ReducedFunctional(functional, controls[name]), values[name], direction)
            assert rate > 1.95, name


def test_taped_steps_repeat_untaped_steps_bit_for_bit():
    """The checkpoint manager re-runs steps under annotation: they must reproduce the untaped states exactly."""
    from firedrake.adjoint import Tape, continue_annotation, pause_annotation, set_working_tape

    untaped, _ = halfar_model(12)
    taped, _ = halfar_model(12)
    untaped.run(3, 50.0)
    with set_working_tape(Tape()):
        continue_annotation()
        try:
            taped.run(3, 50.0)
        finally:
            pause_annotation()
    assert np.array_equal(untaped.thickness.dat.data_ro, taped.thickness.dat.data_ro)


def test_taping_a_step_with_an_active_bound_is_refused():
    """Ablation on bare ground makes the bound active: the step cannot be taped and says why."""
    from firedrake.adjoint import Tape, continue_annotation, pause_annotation, set_working_tape

    model, _ = halfar_model(6)
    model.accumulation.assign(-1.0)
    with set_working_tape(Tape()):
        continue_annotation()
        try:
            with pytest.raises(RuntimeError, match="bound"):
                model.step(50.0)
        finally:
            pause_annotation()
