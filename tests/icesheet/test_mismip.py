"""MISMIP+ (Asay-Davis et al. 2016, GMD 9, 2471): the Ice1 melt term, the scenario files, short runs, the melt control.

Oracles: the melt rate at sample points computed here by hand from the paper's constants (Omega = 0.2 /yr,
H_c0 = 75 m, z_0 = -100 m, rho_i = 918, rho_w = 1028 kg/m^3), not from icesheet.melt; the paper's SI parameters
converted here; the volume budget of a step (the constant test function in the continuity equation's weak form gives
dV = dt (int a - int f m - outflow), docs: icesheet/transport.py), and a Taylor remainder for the melt control.
Meshes are 40 km (16 x 2 cells), runs 2 steps.
"""
import math

import pytest

from icesheet.scenarios import scenario_parameters

SECONDS_PER_YEAR = 31556926.0  # MISMIP+'s year
COARSE = {"mesh.cell_size": 40000.0, "ice.initial_thickness": 500.0, "time.dt": 2.0}


def published_melt(h, b, omega=0.2, h_c0=75.0, z_0=-100.0, rho_i=918.0, rho_w=1028.0):
    """The Ice1 melt rate by hand: floating where rho_i h < -rho_w b; draft z_d = -rho_i h / rho_w."""
    if rho_i * h + rho_w * b > 0:
        return 0.0
    draft = -rho_i / rho_w * h
    return omega * math.tanh((draft - b) / h_c0) * max(z_0 - draft, 0.0)


@pytest.mark.firedrake
@pytest.mark.parametrize("thickness, bed", [(400.0, -700.0), (700.0, -640.0), (100.0, -500.0), (1000.0, -500.0),
                                            (600.0, -720.0)])
def test_melt_rate_is_the_published_formula(thickness, bed):
    """(400, -700): deep shelf; (700, -640): a thin water column (tanh < 1); (100, -500): draft above z_0, no melt;
    (1000, -500): grounded, no melt; (600, -720): the deepest bed."""
    import firedrake
    from icesheet.constants import density_in_model_units
    from icesheet.melt import mismip_melt_rate

    mesh = firedrake.UnitSquareMesh(1, 1)
    h, b = firedrake.Constant(thickness), firedrake.Constant(bed)
    rate = mismip_melt_rate(h, b, rho_ice=density_in_model_units(918.0), rho_water=density_in_model_units(1028.0))
    value = firedrake.assemble(rate * firedrake.dx(domain=mesh))
    expected = published_melt(thickness, bed)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
    if (thickness, bed) == (400.0, -700.0):
        assert value == pytest.approx(51.43, abs=0.01)  # 0.2 tanh(342.80 / 75) (357.20 - 100), worked on paper


def test_scenario_files_hold_the_published_parameters():
    for name in ("mismip_ice0", "mismip_ice1r"):
        p = scenario_parameters(name)
        assert (p["mesh"]["length"], p["mesh"]["width"]) == (640e3, 80e3)
        # A = 6.338e-25 Pa^-3 s^-1 and C = 3.160e6 Pa m^-1/3 s^1/3 in MPa, m, yr
        assert p["ice"]["rate_factor"] == pytest.approx(6.338e-25 * 1e18 * SECONDS_PER_YEAR, rel=1e-3)
        assert p["ice"]["friction"] == pytest.approx(3.160e6 * 1e-6 * SECONDS_PER_YEAR ** (-1 / 3), rel=1e-3)
        assert p["ice"]["accumulation"] == 0.3
        assert (p["ice"]["ice_density"], p["ice"]["water_density"]) == (918.0, 1028.0)
    assert "melt" not in scenario_parameters("mismip_ice0")
    melt = scenario_parameters("mismip_ice1r")["melt"]
    assert (melt["rate"], melt["water_column_scale"], melt["onset_depth"], melt["melt_factor"]) == (
        0.2, 75.0, -100.0, 1.0)


def build(name, **overrides):
    from icesheet.scenarios import build_model

    return build_model(name, scenario_parameters(name, overrides={**COARSE, **overrides}))


@pytest.mark.firedrake
def test_flotation_ratio_and_melt_only_on_floating_ice():
    """At every node of the model's initial state (500 m of ice: grounded over the shallow upstream trough and the
    walls, afloat over the deep trough) the model's melt equals the hand formula, which is zero on grounded ice."""
    import firedrake as fd
    import numpy as np
    from icesheet import constants

    model = build("mismip_ice1r", **{"physics.melt_at_grounding_line": "sub-element"})  # the formula at every node
    assert constants.ice_density / model.water_density == pytest.approx(918.0 / 1028.0, rel=1e-14)
    assert "melt_factor" in model.controls() and "melt_factor" not in build("mismip_ice0").controls()
    melt = fd.Function(model.thickness.function_space()).interpolate(model.melt_rate)
    h, b, m = (f.dat.data_ro for f in (model.thickness, model.bed, melt))
    floating = 918.0 * h + 1028.0 * b < 0
    assert floating.any() and (~floating).any()
    assert np.all(m[~floating] == 0)
    assert np.allclose(m, [published_melt(hi, bi) for hi, bi in zip(h, b)], rtol=1e-12, atol=1e-12)
    assert m.max() > 10  # the sample reaches the deep, fast-melting part


@pytest.mark.firedrake
@pytest.mark.parametrize("name", ["mismip_ice0", "mismip_ice1r"])
def test_two_steps_close_the_volume_budget(name):
    """Per step, int h_new - int h_old = dt (int a - int f m(h_old) - int_boundary max(u.n, 0) h_new) (no inflow:
    u = 0 at x = 0, u.n = 0 on the walls), before the clamp h = max(h, 0), which adds ``clamped_volume``."""
    import firedrake as fd
    import numpy as np

    model = build(name)
    dt = scenario_parameters(name, overrides=COARSE)["time"]["dt"]
    n = fd.FacetNormal(model.mesh)
    sink = model.melt_rate if model.melt_rate is not None else fd.Constant(0.0) * model.thickness
    for _ in range(2):
        before = fd.assemble(model.thickness * fd.dx)
        melted = fd.assemble(sink * fd.dx(metadata={"quadrature_degree": 4}))  # the thickness solver's rule
        info = model.step(dt)
        unclamped = model.thickness_solver.thickness_new
        outflow = fd.assemble(fd.max_value(fd.dot(model.velocity, n), 0) * unclamped * fd.ds)
        accumulated = fd.assemble(model.accumulation * fd.dx)
        change = fd.assemble(unclamped * fd.dx) - before
        assert change == pytest.approx(dt * (accumulated - melted - outflow), rel=1e-8)
        assert fd.assemble(model.thickness * fd.dx) - before == pytest.approx(change + info.clamped_volume,
                                                                             rel=1e-10)
        assert np.all(np.isfinite(model.velocity.dat.data_ro))
        assert (melted > 0) == (name == "mismip_ice1r")


@pytest.mark.firedrake
def test_melt_factor_gradient_has_a_second_order_taylor_remainder():
    """d(volume after 2 steps)/d(melt_factor) through the checkpoint manager (icesheet.controls, control "melt")."""
    import firedrake as fd
    from firedrake.adjoint import stop_annotating
    from icesheet.controls import compute_gradient
    from icesheet.functionals import build_functional

    model = build("mismip_ice1r")
    steps, dt = 2, 2.0
    functional = build_functional(model, "volume", steps)
    result = compute_gradient(model, functional, [dt] * steps, ("melt",))
    x, _ = fd.SpatialCoordinate(model.mesh)
    direction = fd.Function(model.melt_factor.function_space()).interpolate(0.5 + 0.3 * fd.cos(x / 1e5))
    slope = result.derivative["melt"].dat.inner(direction.dat)
    assert slope < 0  # more melt, less ice

    def J(eps):
        saved = [f.copy(deepcopy=True) for f in (model.melt_factor,) + model.state]
        with stop_annotating():
            model.melt_factor.assign(saved[0] + eps * direction)
            for _ in range(steps):
                model.step(dt)
            value = float(fd.assemble(functional.form))
            for f, s in zip((model.melt_factor,) + model.state, saved):
                f.assign(s)
        return value

    base = J(0.0)
    assert base == pytest.approx(result.value, rel=1e-9)
    remainders = [abs(J(eps) - base - eps * slope) for eps in (0.1, 0.05, 0.025)]
    orders = [math.log2(r0 / r1) for r0, r1 in zip(remainders, remainders[1:])]
    assert min(orders) >= 1.9, (remainders, orders, slope)


@pytest.mark.firedrake
def test_centreline_grounding_line_finds_a_known_flotation_point():
    """With h = -(rho_W/rho_I) b + 0.01 (x_g - x) the height above flotation is 0.01 (x_g - x), linear, so the P1
    fields give it exactly and the crossing is x_g."""
    import firedrake as fd
    from experiments.mismip import centreline_grounding_line
    from firedrake.adjoint import stop_annotating
    from icesheet import constants

    model = build("mismip_ice0")
    x, _ = fd.SpatialCoordinate(model.mesh)
    x_g = 437_123.0
    with stop_annotating():
        model.thickness.interpolate(-model.water_density / constants.ice_density * model.bed + 0.01 * (x_g - x))
    assert centreline_grounding_line(model) == pytest.approx(x_g, abs=1e-3)


@pytest.mark.firedrake
def test_spin_up_saves_its_state_and_restarts_from_it(tmp_path):
    """Two spin-ups of 4 years, the second restarting from the first's saved state: the time continues, the log
    grows, and the restarted state is the saved one."""
    import csv
    import json

    from experiments.mismip import build, spin_up

    first = spin_up(40000.0, 4.0, tmp_path, save_every=2.0, log_every=2.0)
    state = tmp_path / "ice0_40km.h5"
    assert json.loads(state.with_suffix(".json").read_text())["time"] == pytest.approx(4.0)
    saved = build("mismip_ice0", 40000.0, state)
    assert saved.volume_above_flotation() == pytest.approx(first["vaf"], rel=1e-12)
    second = spin_up(40000.0, 4.0, tmp_path, restart=state, save_every=2.0, log_every=2.0)
    assert second["time"] == pytest.approx(8.0)
    with open(tmp_path / "spinup.csv") as handle:
        times = [float(row["time"]) for row in csv.DictReader(handle)]
    assert times == pytest.approx([2.0, 4.0, 6.0, 8.0])


@pytest.mark.firedrake
def test_melt_control_on_a_scenario_without_melt_is_one_line(capsys, tmp_path):
    from icesheet.cli import main

    code = main(["gradient", "--scenario", "mismip_ice0", "--functional", "volume", "--control", "melt",
                 "--steps", "1", "--mesh-size", "40000", "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert "control = 'melt': this model has no such control" in capsys.readouterr().err


def test_a_bad_supg_parameter_of_the_spin_up_is_one_line_before_any_run(capsys, tmp_path):
    from experiments.mismip import spinup_main

    with pytest.raises(SystemExit) as exit_info:
        spinup_main(["--out", str(tmp_path / "spinup"), "--supg-parameter", "upwind"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "solver.supg_parameter = 'upwind': allowed values are ('transient', 'steady')")
    assert not (tmp_path / "spinup").exists()


def test_every_saved_convergence_run_is_a_case_of_the_study_that_pins_its_settings():
    """data/mismip/convergence/runs holds one CSV per complete case of ``--full``, and every case of ``--full`` has one
    (so the study reads them all back instead of running any); each case made before 29 Nov 2026 names the transient
    SUPG parameter and its spin-up."""
    from pathlib import Path

    from experiments.mismip_convergence import SPINUPS, cases, saved_results

    runs = Path(__file__).resolve().parents[2] / "data" / "mismip" / "convergence" / "runs"
    results = saved_results(runs)
    assert {case.tag + ".csv" for case in results} == {path.name for path in runs.glob("*.csv")}
    assert [case.tag for case in cases(True) if case not in results] == []  # --full runs nothing unsaved
    for case in results:
        assert SPINUPS[case.spinup].is_file()
        supg = dict(case.solver).get("solver.supg_parameter")
        assert (supg is not None) == (case.spinup == "transient"), case.tag


@pytest.mark.firedrake
def test_a_failed_step_is_retried_as_two_half_steps_on_new_solvers():
    """experiments.mismip.advance: a step whose thickness solve fails is undone and taken as two steps of dt / 2 on
    new solvers (IceModel.reset_solvers); the result is that of two half steps taken directly from the same state,
    to the solves' tolerance."""
    import numpy as np
    from firedrake.exceptions import ConvergenceError

    from experiments.mismip import advance, build

    model, reference = build("mismip_ice0", 40000.0), build("mismip_ice0", 40000.0)
    for m in (model, reference):
        m.step(2.0)
    reference.step(1.0)
    reference.step(1.0)
    solve = model.thickness_solver.solve

    def fail_once(dt):
        model.thickness_solver.solve = solve
        raise ConvergenceError("thickness solve: forced failure")

    model.thickness_solver.solve = fail_once
    old_solvers = (model.velocity_solver, model.thickness_solver)
    infos = advance(model, 2.0)
    assert [info.dt for info in infos] == [1.0, 1.0]
    assert model.velocity_solver is not old_solvers[0] and model.thickness_solver is not old_solvers[1]
    assert model.time == pytest.approx(reference.time)
    h, h_ref = model.thickness.dat.data_ro, reference.thickness.dat.data_ro
    assert np.linalg.norm(h - h_ref) <= 1e-8 * np.linalg.norm(h_ref)
