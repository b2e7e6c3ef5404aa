"""Inversions from observation files (icesheet.observations, icesheet.inversion, ``icesheet invert``).

Oracles: the misfit of data offset from the model velocity by a known constant is its closed-form chi-squared; the
gradients pass Taylor tests (remainder of order 2) in snapshot and transient mode, and the transient gradient is the
same through store-all and through Revolve with one RAM slot (whose peak stays at one checkpoint); twin inversions
from files written by icesheet.synthetic recover most of the true friction's anomaly on the grounded ice with the
misfit at the noise level (the transient one in model steps below the stable time step, from the snapshot start,
as the 4 km goal case of benchmarks/bench_inversion.py); an inversion interrupted inside its second minimisation
and continued with ``--resume`` repeats the uninterrupted run's weights, iterations and evaluations, with values
equal to round-off.  Coarse meshes (40 km) keep this module to a few minutes; the 4 km goal cases are
experiments/file_inversion.py ``--full`` (snapshot) and benchmarks/bench_inversion.py ``--grounding --start
snapshot`` (transient, about 20 minutes: too long for the suite).
"""
import csv
import json

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

CELL = 40000.0
SIGMA = 0.5


def _model(controls=("friction",), cell=CELL, grounded_indicator="sharp"):
    from icesheet.inversion import control_parameters
    from icesheet.scenarios import build_model, scenario_parameters

    overrides = {"mesh.cell_size": cell, "solver.tolerance": 1e-2, "solver.residual_tolerance": 1e-2,
                 "physics.grounded_indicator": grounded_indicator, **control_parameters(controls)}
    return build_model("marine_ice_stream", scenario_parameters("marine_ice_stream", overrides=overrides))


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    from experiments.file_inversion import write_twin

    out = tmp_path_factory.mktemp("twin")
    return {**write_twin(out / "observations", CELL), "out": out}


def _taylor_orders(evaluate, z0, direction):
    value, gradient = evaluate(z0)
    slope = gradient @ direction
    remainders = [abs(evaluate(z0 + h * direction)[0] - value - h * slope) for h in (1e-1, 5e-2, 2.5e-2)]
    return [np.log2(a / b) for a, b in zip(remainders, remainders[1:])]


def test_misfit_of_a_known_offset_is_its_chi_squared(tmp_path):
    from pyadjoint import stop_annotating

    from icesheet.observations import misfit_per_observation, observations_on_mesh, read_observations
    from icesheet.synthetic import sample_velocity, write_grid, write_points

    model = _model()
    with stop_annotating():
        model.solve_velocity()
    offset = np.array([0.8, -0.3])  # data = model velocity + offset, errors 0.5 and 0.25 m/yr
    x, y = np.arange(0.0, 640e3 + 1, 20e3), np.arange(0.0, 80e3 + 1, 20e3)
    X, Y = np.meshgrid(x, y)
    values = sample_velocity(model.velocity, np.column_stack([X.ravel(), Y.ravel()])).reshape(*X.shape, 2) + offset
    values[1:3, 4:7] = np.nan  # a gap
    grid = write_grid(tmp_path / "grid.h5", x, y, values[..., 0], values[..., 1], np.full(X.shape, 0.5),
                      np.full(X.shape, 0.25))
    rng = np.random.default_rng(0)
    where = np.column_stack([rng.uniform(0, 640e3, 40), rng.uniform(0, 80e3, 40)])
    at = sample_velocity(model.velocity, where) + offset
    points = write_points(tmp_path / "points.csv", where[:, 0], where[:, 1], at[:, 0], at[:, 1], 0.5)
    grid_obs = observations_on_mesh(read_observations(grid), model.velocity)
    point_obs = observations_on_mesh(read_observations(points), model.velocity)
    assert point_obs.count == 40
    assert grid_obs.kind == "grid (sampled)"  # 20 km grid, 40 km cells: finer than the mesh, sampled at its points
    assert grid_obs.count == X.size - 6  # every value but the gap's
    expected_grid = ((0.8 / 0.5) ** 2 + (0.3 / 0.25) ** 2) / 2
    expected_points = ((0.8 / 0.5) ** 2 + (0.3 / 0.5) ** 2) / 2
    with stop_annotating():
        assert float(misfit_per_observation([grid_obs])) == pytest.approx(expected_grid, rel=1e-5)
        assert float(misfit_per_observation([point_obs])) == pytest.approx(expected_points, rel=1e-9)
        total = (expected_grid * grid_obs.count + expected_points * 40) / (grid_obs.count + 40)
        assert float(misfit_per_observation([grid_obs, point_obs])) == pytest.approx(total, rel=1e-5)


def test_surface_misfit_of_a_known_offset_is_its_chi_squared(tmp_path):
    from pyadjoint import stop_annotating

    from icesheet.observations import misfit_per_observation, observations_on_mesh, read_observations
    from icesheet.synthetic import sample_velocity, write_surface_grid, write_surface_points

    model = _model()
    surface = model.surface_expression
    x, y = np.arange(0.0, 640e3 + 1, CELL), np.arange(0.0, 80e3 + 1, CELL)  # the vertices: interpolated there
    X, Y = np.meshgrid(x, y)
    nodal = model.output_fields()["surface"]
    values = sample_velocity(nodal, np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape) + 1.5
    values[1, 3] = np.nan
    grid = write_surface_grid(tmp_path / "s.nc", x, y, values, np.full(X.shape, 2.0))
    rng = np.random.default_rng(3)  # points on grounded ice, where s = b + h is the P1 field's value
    where = np.column_stack([rng.uniform(0, 300e3, 30), rng.uniform(0, 80e3, 30)])
    points = write_surface_points(tmp_path / "s.csv", where[:, 0], where[:, 1],
                                  sample_velocity(nodal, where) - 0.5, 0.25)
    grid_obs = observations_on_mesh(read_observations(grid), model.velocity, surface)
    point_obs = observations_on_mesh(read_observations(points), model.velocity, surface)
    assert (grid_obs.kind, grid_obs.quantity, grid_obs.count, grid_obs.size) == ("grid", "surface", X.size - 1,
                                                                                 X.size - 1)
    assert (point_obs.kind, point_obs.quantity, point_obs.size) == ("points", "surface", 30)
    with stop_annotating():
        assert float(misfit_per_observation([grid_obs])) == pytest.approx((1.5 / 2.0) ** 2, rel=1e-4)
        assert float(misfit_per_observation([point_obs])) == pytest.approx((0.5 / 0.25) ** 2, rel=1e-4)
    with pytest.raises(ValueError, match="are of the surface: pass the model's surface"):
        observations_on_mesh(read_observations(grid), model.velocity)


def test_snapshot_gradient_taylor_both_controls(twin):
    from icesheet.inversion import Regularisation, SnapshotInversion
    from icesheet.observations import observations_on_mesh, read_observations

    model = _model(("friction", "rheology"))
    observations = [observations_on_mesh(read_observations(twin[k]), model.velocity) for k in ("grid", "points")]
    problem = SnapshotInversion(model, observations, ("friction", "rheology"), Regularisation("tv", 50e3))
    problem.alpha = 0.5
    z0 = problem.vector()
    z0 = z0 + 0.1 * np.sin(np.arange(z0.size))  # away from the prior, where the TV term is smooth
    direction = np.random.default_rng(1).standard_normal(z0.size) * 0.05
    orders = _taylor_orders(problem.evaluate, z0, direction)
    assert min(orders) > 1.8, orders


def test_transient_gradient_taylor_any_schedule_bounded_memory(tmp_path):
    from checkpointing.platform import Level, Platform
    from experiments.file_inversion import write_transient_twin
    from icesheet.inversion import TransientInversion
    from icesheet.observations import observations_on_mesh, read_observations

    dt, steps = 10.0, 3
    files = write_transient_twin(tmp_path, CELL, dt, steps)["files"]
    model = _model()
    terms = {round(t / dt) + 1: [observations_on_mesh(read_observations(p), model.velocity)] for t, p in files.items()}
    one_slot = Platform((Level(1, name="ram"),), name="ram1")
    problem = TransientInversion(model, terms, [dt] * steps, schedule="revolve", platform=one_slot)
    store_all = TransientInversion(model, terms, [dt] * steps, schedule="store-all",
                                   platform=Platform((Level(steps, name="ram"),), name="ram"))
    problem.alpha = store_all.alpha = 0.2
    z0 = problem.vector() + 0.05
    direction = np.random.default_rng(2).standard_normal(z0.size) * 0.05
    orders = _taylor_orders(problem.evaluate, z0, direction)
    assert min(orders) > 1.8, orders
    value, gradient = problem.evaluate(z0)
    counters = problem.last_result.counters
    assert counters.peak[0] <= 1 and counters.forward_steps > steps  # recomputation instead of memory
    value_all, gradient_all = store_all.evaluate(z0)
    assert value_all == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(gradient_all, gradient, rtol=1e-9, atol=1e-12 * np.abs(gradient).max())


def _transient_terms(model, twin, dt):
    from icesheet.inversion import term_index
    from icesheet.observations import observations_on_mesh, read_observations

    surface = model.surface_expression
    terms = {}
    for files in (twin["files"], twin["surface_files"]):
        for t, path in files.items():
            data = read_observations(path)
            terms.setdefault(term_index(data.quantity, t, dt), []).append(
                observations_on_mesh(data, model.velocity, surface))
    return terms


def test_transient_gradient_taylor_initial_thickness_and_surface(tmp_path):
    from checkpointing.platform import Level, Platform
    from experiments.file_inversion import write_transient_twin
    from icesheet.inversion import TransientInversion

    dt, steps = 10.0, 2
    twin = write_transient_twin(tmp_path, CELL, dt, steps, surface=True, thickness_error=100.0)
    model = _model()
    terms = _transient_terms(model, twin, dt)
    assert sorted(terms) == [0, 1, 2] and [o.quantity for o in terms[0]] == ["surface"]  # s(t=0) is held by x_0
    problem = TransientInversion(model, terms, [dt] * steps, ("friction", "thickness"), schedule="revolve",
                                 platform=Platform((Level(1, name="ram"),), name="ram1"))
    problem.alpha = 0.2
    z0 = problem.vector()
    np.testing.assert_allclose(np.exp(z0[z0.size // 2:] / problem._scale), model.thickness.dat.data_ro, rtol=1e-12)
    direction = np.random.default_rng(4).standard_normal(z0.size) * 0.005
    orders = _taylor_orders(problem.evaluate, z0, direction)
    assert min(orders) > 1.8, orders


def test_twin_initial_thickness_error_goes_down(tmp_path):
    """A thickness-only twin: the truth's initial thickness has a 100 m bump the prior lacks (friction known).  Five
    L-BFGS iterations: measured 29 Nov 2026, the misfit is 0.006 of its initial value and the thickness error 0.08
    of the prior's after five (0.003 and 0.04 after twelve), against the bounds 0.1 and 0.5 asserted."""
    from pyadjoint import stop_annotating

    from experiments.file_inversion import write_transient_twin
    from icesheet.inversion import Inversion, Regularisation, TransientInversion
    from icesheet.optimisation import LBFGSOptions

    dt, steps = 10.0, 2
    twin = write_transient_twin(tmp_path, CELL, dt, steps, surface=True, thickness_error=100.0, friction_error=False)
    model = _model(("friction",), grounded_indicator="smooth")  # the twin's physics
    prior = model.thickness.dat.data_ro.copy()
    problem = TransientInversion(model, _transient_terms(model, twin, dt), [dt] * steps, ("thickness",),
                                 Regularisation(thickness_scale=100.0))
    result = Inversion(problem, tmp_path / "state", LBFGSOptions(max_iterations=5)).solve(0.01)
    with stop_annotating():
        problem.set_vector(result.state.x)
    recovered, truth = model.thickness.dat.data_ro, twin["true_thickness"]
    assert recovered.min() > 0
    assert result.misfit < 0.1 * result.history[0]["misfit"]
    assert np.linalg.norm(recovered - truth) < 0.5 * np.linalg.norm(prior - truth)


def _invert(twin, out, *extra):
    from icesheet.cli import main

    return main(["invert", "--observations", str(twin["grid"]), "--observations", str(twin["points"]),
                 "--mesh-size", str(CELL), "--out", str(out), "--no-progress", "--alpha-start", "0.03", *extra])


def _count_accepts(monkeypatch, stop_at: int | None = None) -> dict:
    """Replace SnapshotInversion.accept (called once per L-BFGS iterate) by one that counts its calls in the returned
    ``{"n": calls}`` and raises KeyboardInterrupt (a Ctrl-C) at call ``stop_at`` instead of accepting it."""
    from icesheet.inversion import SnapshotInversion

    original = getattr(SnapshotInversion.accept, "original", SnapshotInversion.accept)
    calls = {"n": 0}

    def accept(self):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise KeyboardInterrupt
        original(self)

    accept.original = original
    monkeypatch.setattr(SnapshotInversion, "accept", accept)
    return calls


@pytest.fixture(scope="module")
def uninterrupted(twin):
    out = twin["out"] / "uninterrupted"
    assert _invert(twin, out) == 0
    return out


@pytest.mark.slow
def test_twin_snapshot_from_files_recovers_friction(twin, uninterrupted):
    from experiments.file_inversion import grounded_errors
    from icesheet.output import vtk_available

    summary = json.loads((uninterrupted / "summary.json").read_text())
    for name in ("result.h5", "history.csv", "lcurve.csv", "summary.json", "fields.png", "history.png",
                 "lcurve.png"):
        assert (uninterrupted / name).is_file(), name
    assert (uninterrupted / "fields.pvd").is_file() == vtk_available()
    assert summary["alpha_rule"] == "discrepancy principle" and summary["solves"] >= 2
    assert abs(summary["misfit"] - 1.0) <= 0.05 or summary["stop"] == "gradient"
    assert summary["initial_misfit"] > 50  # the prior is far from the data
    error, initial = grounded_errors(uninterrupted / "result.h5", twin["prior"], twin["width"])
    assert error < 0.5 * initial
    with open(uninterrupted / "lcurve.csv") as f:
        lcurve = list(csv.DictReader(f))
    assert len(lcurve) == summary["solves"]
    assert all(r["stop"] in ("gradient", "value") for r in lcurve)  # every point a converged minimiser
    by_alpha = sorted(lcurve, key=lambda r: float(r["alpha"]))
    misfits = [float(r["misfit"]) for r in by_alpha]
    assert misfits == sorted(misfits)  # the misfit grows with the weight


@pytest.mark.slow
def test_resume_equals_uninterrupted(twin, uninterrupted, monkeypatch):
    import firedrake as fd

    out = twin["out"] / "resumed"
    first_solve = len(json.loads((uninterrupted / "summary.json").read_text())["lcurve"][0:1])
    history = list(csv.DictReader(open(uninterrupted / "history.csv")))
    stop_at = sum(1 for r in history if r["solve"] == "0") + 3  # inside the second minimisation
    assert first_solve == 1
    _count_accepts(monkeypatch, stop_at)  # a Ctrl-C inside the second minimisation
    assert _invert(twin, out) == 130  # the command line's status for an interrupted run
    _count_accepts(monkeypatch)
    assert _invert(twin, out, "--resume") == 0
    # The same sequence of weights, iterates and evaluations; values equal to round-off: the L-BFGS state is restored
    # bit for bit, but two adjoint runs at the same point differ in the last bits (pyadjoint's order of summing).
    for name in ("history.csv", "lcurve.csv"):
        resumed, reference = (list(csv.DictReader(open(run / name))) for run in (out, uninterrupted))
        assert len(resumed) == len(reference), name
        for a, b in zip(resumed, reference):
            for key in a:
                try:
                    assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-9, abs=1e-12), (name, key)
                except ValueError:
                    assert a[key] == b[key], (name, key)
    fields = []
    for run in (uninterrupted, out):
        with fd.CheckpointFile(str(run / "result.h5"), "r") as h5:
            mesh = h5.load_mesh()
            fields.append(np.array(h5.load_function(mesh, "log_friction").dat.data_ro))
    np.testing.assert_allclose(fields[0], fields[1], rtol=1e-9)


@pytest.fixture(scope="module")
def transient_twin(tmp_path_factory):
    """Velocity files of times 0 and 10 yr (the truth run in model steps of 10/3 yr), the prior and the width."""
    from experiments.file_inversion import write_transient_twin

    return write_transient_twin(tmp_path_factory.mktemp("transient") / "observations", CELL, 10.0, 2, substeps=3)


@pytest.mark.slow
def test_twin_transient_from_files(transient_twin, tmp_path):
    from experiments.file_inversion import grounded_errors
    from icesheet.cli import main

    dt, steps, twin = 10.0, 2, transient_twin
    argv = ["invert", "--mesh-size", str(CELL), "--dt", str(dt), "--alpha", "0.3", "--gradient-tolerance", "3e-3",
            "--out", str(tmp_path / "out"), "--no-progress"]
    for t, path in twin["files"].items():
        argv += ["--observations", f"{path}@{t:g}"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mode"] == "transient" and summary["steps"] == steps
    # 40 km: the stable step at the prior is 9.5 yr, so auto takes 3 model steps per 10 yr (half the bound), as the
    # twin: velocities of 0 and 10 yr are solved in model steps 1 and 4
    assert (summary["substeps"], summary["model_steps"]) == (3, 4)
    assert summary["model_dt"] <= 0.5 * summary["stable_dt_prior"]
    assert summary["peak_checkpoints"][0] <= 2  # Revolve on the default 2 RAM slots
    # started from the snapshot inversion of the time-0 velocities; the gradient test is relative to the prior's
    assert summary["start"] == "snapshot" and summary["start_snapshot"]["stop"] == "gradient"
    assert summary["initial_misfit"] < 0.1 * summary["prior_misfit"]
    assert summary["grounded_indicator"] == "smooth"  # the transient inversion's default, as the twin's
    assert summary["stop"] == "gradient" and summary["misfit"] < 1.2
    error, initial = grounded_errors(tmp_path / "out" / "result.h5", twin["prior"], twin["width"])
    assert error < 0.5 * initial


@pytest.mark.slow
def test_transient_resume_inside_the_snapshot_start_equals_uninterrupted(transient_twin, tmp_path, monkeypatch):
    """A transient inversion interrupted inside its snapshot start (Ctrl-C at the start's third accepted point of
    four: the start and its first two iterates) and continued with --resume repeats the uninterrupted run: the same
    start, the same transient iterates and evaluations, values equal to round-off.  Three L-BFGS iterations per
    minimisation: the start does not converge in three (it takes about 45), so the interrupt falls inside it."""
    import firedrake as fd

    from icesheet.cli import main

    files = transient_twin["files"]

    def invert(out, *extra):
        argv = ["invert", "--mesh-size", str(CELL), "--dt", "10", "--alpha", "0.3", "--max-iterations", "3",
                "--out", str(out), "--no-progress", *extra]
        for t, path in files.items():
            argv += ["--observations", f"{path}@{t:g}"]
        return main(argv)

    # TransientInversion has its own accept: only the start's iterates are counted
    whole = _count_accepts(monkeypatch)
    assert invert(tmp_path / "uninterrupted") == 0
    _count_accepts(monkeypatch, stop_at=3)
    assert invert(tmp_path / "resumed") == 130
    assert not (tmp_path / "resumed" / "state" / "solve00.rank0.npz").exists()  # stopped inside the start
    resumed = _count_accepts(monkeypatch)
    assert invert(tmp_path / "resumed", "--resume") == 0
    # continued, not recomputed: the start's first two iterates were accepted before the interrupt and not again
    assert resumed["n"] == whole["n"] - 2 > 0
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("uninterrupted", "resumed")]
    for key in ("iterations", "evaluations", "stop"):
        assert summaries[0][key] == summaries[1][key], key
    assert summaries[0]["start_snapshot"]["evaluations"] == summaries[1]["start_snapshot"]["evaluations"]
    assert summaries[1]["misfit"] == pytest.approx(summaries[0]["misfit"], rel=1e-9)
    fields = []
    for run in ("uninterrupted", "resumed"):
        with fd.CheckpointFile(str(tmp_path / run / "result.h5"), "r") as h5:
            fields.append(np.array(h5.load_function(h5.load_mesh(), "log_friction").dat.data_ro))
    np.testing.assert_allclose(fields[1], fields[0], rtol=1e-9)


def test_a_model_step_above_the_stable_one_is_refused(twin, tmp_path, capsys):
    """--substeps 1 with --dt 10 on 40 km cells: the stable time step at the prior's initial state is 9.5 yr
    (icesheet/stability.py), so one 10-year model step per interval is refused before the inversion, naming the
    bound and the count needed; auto takes 3 (test_twin_transient_from_files)."""
    from icesheet.cli import main

    code = main(["invert", "--observations", f"{twin['grid']}@0", "--observations", f"{twin['grid']}@10", "--dt", "10",
                 "--substeps", "1", "--mesh-size", str(CELL), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "substeps = 1: the model step dt / substeps = 10 yr is above the stable time step 9.5" in err
    assert "use --substeps >= 2 or auto" in err


def test_observations_off_the_mesh_are_named(twin, tmp_path, capsys):
    from icesheet.cli import main
    from icesheet.synthetic import write_grid, write_points, write_surface_points

    points = write_points(tmp_path / "far.csv", [1e3, 700e3], [1e3, 40e3], [1.0, 1.0], [0.0, 0.0], 0.5)
    surface = write_surface_points(tmp_path / "far_s.csv", [-200e3, 1e3], [1e3, 1e3], [500.0, 500.0], 1.0)
    x, y = np.array([1e6, 1.1e6]), np.array([0.0, 1e4])
    grid = write_grid(tmp_path / "far.nc", x, y, np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)))
    for path, expected in ((points, "1 of 2 points lie outside the mesh, the first in data row 2 at (700000, 40000)"),
                           (surface, "1 of 2 points lie outside the mesh, the first in data row 1 at (-200000, 1000)"),
                           (grid, "reach no vertex of the mesh")):
        code = main(["invert", "--observations", f"{path}@10", "--mesh-size", str(CELL), "--out",
                     str(tmp_path / "o"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2
        assert f"observations {str(path)!r}, variable 'x, y'" in err and expected in err


@pytest.mark.slow
def test_invert_command_initial_thickness_from_surface_and_velocity(tmp_path):
    import firedrake as fd

    from experiments.file_inversion import write_transient_twin
    from icesheet.cli import main

    twin = write_transient_twin(tmp_path / "obs", CELL, 10.0, 1, surface=True, thickness_error=100.0,
                                friction_error=False)
    out = tmp_path / "out"
    assert main(["invert", "--observations", str(twin["files"][0.0]), "--observations", str(twin["surface_files"][0.0]),
                 "--control", "thickness", "--mesh-size", str(CELL), "--dt", "10", "--alpha", "0.01",
                 "--max-iterations", "3", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["mode"], summary["steps"], summary["grounded_indicator"]) == ("transient", 1, "smooth")
    assert [o["quantity"] for o in summary["observations"]] == ["velocity", "surface"]
    assert summary["misfit"] < 0.5 * summary["initial_misfit"]
    with fd.CheckpointFile(str(out / "result.h5"), "r") as h5:
        thickness = h5.load_function(h5.load_mesh(), "thickness").dat.data_ro
    prior = _model(grounded_indicator="smooth").thickness.dat.data_ro
    truth = twin["true_thickness"]
    assert thickness.min() > 0 and np.linalg.norm(thickness - truth) < np.linalg.norm(prior - truth)


@pytest.mark.mpi
@pytest.mark.slow
def test_two_ranks_match_serial(twin, tmp_path, capsys, mpi_run):
    from icesheet.cli import main

    common = ["invert", "--observations", str(twin["grid"]), "--observations", str(twin["points"]),
              "--mesh-size", str(CELL), "--alpha", "0.3", "--max-iterations", "8", "--no-progress", "--json"]
    assert main([*common, "--out", str(tmp_path / "serial")]) == 0
    serial = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    parallel = mpi_run("icesheet", *common, "--out", str(tmp_path / "parallel"))
    assert parallel["ranks"] == 2 and serial["ranks"] == 1
    assert parallel["observation_count"] == serial["observation_count"]
    assert parallel["iterations"] == serial["iterations"]
    for key in ("initial_misfit", "misfit", "regularisation"):
        assert parallel[key] == pytest.approx(serial[key], rel=1e-6), key


@pytest.mark.slow
def test_resuming_a_finished_run_in_a_new_process_reads_it_back(twin, uninterrupted, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    out = tmp_path / "again"
    shutil.copytree(uninterrupted, out)
    (out / "summary.json").unlink()
    argv = [sys.executable, "-m", "icesheet", "invert", "--observations", str(twin["grid"]), "--observations",
            str(twin["points"]), "--mesh-size", str(CELL), "--out", str(out), "--no-progress", "--alpha-start", "0.03",
            "--resume"]
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "PETSC_OPTIONS": "-options_left no"})
    again, before = (json.loads((d / "summary.json").read_text()) for d in (out, uninterrupted))
    assert again["lcurve"] == before["lcurve"]  # every minimisation read back, none run again
    assert (out / "history.csv").read_text() == (uninterrupted / "history.csv").read_text()


def test_resume_with_another_number_of_ranks_is_refused(twin, uninterrupted, tmp_path, capsys):
    import shutil

    out = tmp_path / "two"
    shutil.copytree(uninterrupted, out)
    shutil.copy(out / "state" / "solve00.rank0.npz", out / "state" / "solve00.rank1.npz")
    assert _invert(twin, out, "--resume") == 2
    assert "was written by 2 MPI ranks, this run has 1; resume with mpiexec -n 2" in capsys.readouterr().err
