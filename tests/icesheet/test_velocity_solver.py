"""The Picard solver converges on every scenario to a velocity that satisfies the SSA as an independent oracle
writes it: the Euler-Lagrange equation of the SSA action functional (icepack's formulation; Schoof 2006,
J. Fluid Mech. 556), differentiated by UFL rather than written out by hand."""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

COARSE = {"ice_shelf_ramp": {"mesh.cell_size": 5000.0},
          "van_der_veen_shelf": {"mesh.cell_size": 10000.0},
          "marine_ice_stream": {"mesh.cell_size": 40000.0}}


def coarse_model(name, **model_options):
    from icesheet.scenarios import build_model, scenario_parameters

    return build_model(name, scenario_parameters(name, overrides=COARSE[name]), **model_options)


def action_residual_norms(model):
    """||dE/du|| and ||dE/du at u = 0 from the load terms|| with Dirichlet rows removed, E the SSA action
    (integrated with the model's quadrature rule, which is part of the discretisation: the grounded indicator jumps
    inside cells crossed by the grounding line):

    E(u) = int 2n/(n+1) h A^(-1/n) e_e^(1/n+1) + m/(m+1) chi_g C (|u|^2 + u_min^2)^((1/m+1)/2) + rho_i g h grad s . u dx
           - int_front (rho_i g h^2 / 2 - rho_w g d^2 / 2) u . nu ds
    """
    import firedrake
    from firedrake import conditional, grad, gt, inner, max_value, min_value, sqrt, sym, tr

    from icesheet import constants as c

    u, h, b = model.velocity, model.thickness, model.bed
    A, C, rho_i, rho_w, g = model.rate_factor, model.friction, c.ice_density, model.water_density, c.gravity
    n, m = c.glen_flow_law, c.weertman_sliding_law
    eps = sym(grad(u))
    eps_e = sqrt((inner(eps, eps) + tr(eps) ** 2 + c.strain_rate_min**2) / 2)
    s = max_value(b + h, (1 - rho_i / rho_w) * h)
    grounded = conditional(gt(rho_i * h + rho_w * b, 0), 1, 0)
    d = min_value(s - h, 0)
    nu = firedrake.FacetNormal(model.mesh)
    front = model.boundaries.calving_front
    dx = firedrake.dx(degree=model.velocity_solver.quadrature_degree)
    ds = firedrake.ds(front, degree=model.velocity_solver.quadrature_degree)
    viscous = 2 * n / (n + 1) * h * A ** (-1 / n) * eps_e ** (1 / n + 1) * dx
    friction = m / (m + 1) * grounded * C * (inner(u, u) + c.sliding_speed_min**2) ** ((1 / m + 1) / 2) * dx
    loads = rho_i * g * h * inner(grad(s), u) * dx - 0.5 * g * (rho_i * h**2 - rho_w * d**2) * inner(u, nu) * ds
    v = firedrake.TestFunction(model.velocity_space)
    mask = model.velocity_solver._bc_mask

    def norm(form):
        return np.linalg.norm(np.where(mask, 0.0, firedrake.assemble(form).dat.data_ro))

    return norm(firedrake.derivative(viscous + friction + loads, u, v)), norm(firedrake.derivative(loads, u, v))


@pytest.mark.parametrize("name", sorted(COARSE))
def test_picard_converges_to_the_root_of_the_ssa_action(name):
    model = coarse_model(name, adjoint_mode="unrolled")
    info = model.solve_velocity()
    assert 1 <= info.picard_iterations < 100
    assert info.changes[-1] <= 1e-6
    assert info.residuals[-1] <= 1e-6 * max(info.residuals[0], 1.0)
    residual, load = action_residual_norms(model)
    assert residual <= 1e-5 * load, (residual, load)


@pytest.mark.parametrize("name", sorted(COARSE))
def test_newton_finish_drives_the_residual_to_round_off(name):
    from icesheet.velocity_solver import PicardOptions

    # fixed-point mode, the seed's strategy: Picard to 1e-6, then Newton on the full residual
    model = coarse_model(name, picard=PicardOptions(strategy="picard"))
    info = model.solve_velocity()
    assert info.newton_iterations <= 3
    residual, load = action_residual_norms(model)
    assert residual <= 1e-9 * load, (residual, load)
    # the final relative residual, taken from SNES's last residual norm, is the one the solver's norm measures
    assert info.final_residual == pytest.approx(model.velocity_solver.relative_residual(), rel=1e-3, abs=1e-15)


def test_grounded_and_floating_ice_both_present_in_the_marine_ice_stream():
    model = coarse_model("marine_ice_stream")
    grounded = model.output_fields()["grounded"].dat.data_ro
    assert grounded.min() == 0.0 and grounded.max() == 1.0


def test_too_few_iterations_raise_with_the_history():
    from icesheet.velocity_solver import PicardConvergenceError, PicardOptions

    model = coarse_model("marine_ice_stream", picard=PicardOptions(max_iterations=2))
    with pytest.raises(PicardConvergenceError, match="did not converge in max_iterations = 2") as caught:
        model.step(10.0)
    assert caught.value.info.picard_iterations == 2
    assert len(caught.value.info.residuals) == 3 and len(caught.value.info.changes) == 2


def test_restored_state_repeats_the_step_bit_for_bit():
    model = coarse_model("marine_ice_stream")
    start = model.state_arrays()
    first = model.step(10.0)
    after_first = model.state_arrays()
    model.set_state_arrays(start)
    second = model.step(10.0)
    assert first.picard_iterations == second.picard_iterations > 0
    assert first.residual_history == second.residual_history
    for a, b in zip(after_first, model.state_arrays()):
        assert np.array_equal(a, b)


def test_adjoint_modes_give_the_same_velocity():
    velocities = {}
    for mode in ("fixed-point", "unrolled"):
        model = coarse_model("marine_ice_stream", adjoint_mode=mode)
        model.step(10.0)
        velocities[mode] = model.velocity.dat.data_ro.copy()
    difference = np.linalg.norm(velocities["fixed-point"] - velocities["unrolled"])
    assert difference <= 1e-5 * np.linalg.norm(velocities["fixed-point"])


def test_save_and_load_state_round_trip(tmp_path):
    model = coarse_model("marine_ice_stream")
    model.step(10.0)
    saved = model.state_arrays()
    model.save_state(tmp_path / "state.h5")
    model.step(10.0)
    model.load_state(tmp_path / "state.h5")
    for a, b in zip(saved, model.state_arrays()):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-9)


# -- strategies (icesheet.velocity_solver; docs/solvers.md) --------------------------------------------------------
#: every strategy with MUMPS, and Krylov solvers with each preconditioner
STRATEGY_CASES = [{"strategy": s} for s in ("picard", "anderson", "picard-newton", "anderson-newton", "newton",
                                             "picard-chord")] + [
    {"strategy": "picard-newton", "forcing_floor": False},
    {"strategy": "picard-chord", "linear_solver": "cg", "preconditioner": "asm-cholesky"},
    {"strategy": "picard-newton", "linear_solver": "cg", "preconditioner": "gamg"},
    {"strategy": "picard-newton", "linear_solver": "gmres", "preconditioner": "ilu"},
    {"strategy": "anderson-newton", "linear_solver": "gmres", "preconditioner": "asm"},
    {"strategy": "newton", "linear_solver": "gmres", "preconditioner": "lu"},
    {"strategy": "picard-newton", "linear_solver": "cholesky"},
    {"strategy": "picard-newton", "linear_solver": "cg", "preconditioner": "cholesky", "preconditioner_lag": 0},
    {"strategy": "newton", "linear_solver": "cg", "preconditioner": "cholesky", "preconditioner_lag": 3},
    {"strategy": "newton", "linear_solver": "cg", "preconditioner": "bjacobi-cholesky"},
    {"strategy": "picard-newton", "linear_solver": "cg", "preconditioner": "asm-cholesky", "preconditioner_lag": 0}]
#: the tight reference: the seed's Picard loop, finished by Newton to a relative residual of 1e-12
TIGHT = {"strategy": "picard", "newton_finish": True, "newton_tolerance": 1e-12, "newton_max_iterations": 50}


def case_id(options):
    return "+".join(str(v) for v in options.values())


def tight_reference(model, start):
    """The velocity the tight reference converges to from the state ``start`` (the state is then restored)."""
    from icesheet.velocity_solver import PicardOptions, VelocitySolver

    model.set_state_arrays(start)
    VelocitySolver.for_model(model, PicardOptions(**TIGHT)).solve()
    reference = model.velocity.dat.data_ro.copy()
    model.set_state_arrays(start)
    return reference


def relative_difference(u, reference):
    return np.linalg.norm(u - reference) / np.linalg.norm(reference)


@pytest.mark.parametrize("options", STRATEGY_CASES, ids=case_id)
def test_every_strategy_converges_to_the_reference_velocity_on_the_marine_ice_stream(options):
    # The cold solve from the scenario's rough guess, a thickness update of 10 years, then the warm-started solve a
    # time loop makes at every step: both must land on the tight reference's velocity, which satisfies the SSA as
    # the action functional writes it.
    from icesheet.velocity_solver import PicardOptions

    model = coarse_model("marine_ice_stream", picard=PicardOptions(**options))
    for stage in ("cold", "warm"):
        start = model.state_arrays()
        reference = tight_reference(model, start)
        info = model.solve_velocity()
        assert relative_difference(model.velocity.dat.data_ro, reference) <= 1e-6, (stage, info)
        assert info.strategy == options["strategy"]
        residual, load = action_residual_norms(model)
        assert residual <= 1e-9 * load, (stage, residual, load)
        model.thickness_solver.solve(10.0)


@pytest.mark.parametrize("options", STRATEGY_CASES, ids=case_id)
def test_every_strategy_converges_to_the_exact_ramp_shelf_velocity(options):
    # Ice-shelf ramp (exact solution in tests/icesheet/test_ice_shelf_ramp.py): every strategy reaches the tight
    # reference's velocity, whose L2 distance to the exact solution is the discretisation error at 16 cells.
    import firedrake
    from firedrake import as_vector, assemble, dx, inner

    from icesheet.scenarios import build_model, scenario_parameters
    from icesheet.velocity_solver import PicardOptions

    from test_ice_shelf_ramp import L, exact_speed

    parameters = scenario_parameters("ice_shelf_ramp", overrides={"mesh.cell_size": L / 16})
    model = build_model("ice_shelf_ramp", parameters, picard=PicardOptions(**options))
    reference = tight_reference(model, model.state_arrays())
    model.solve_velocity()
    assert relative_difference(model.velocity.dat.data_ro, reference) <= 1e-6
    x, _ = firedrake.SpatialCoordinate(model.mesh)
    exact = as_vector((exact_speed(x), 0.0))
    error = np.sqrt(assemble(inner(model.velocity - exact, model.velocity - exact) * dx(degree=8))
                    / assemble(inner(exact, exact) * dx(degree=8)))
    assert error < 1e-3, error


def factorisation_counter():
    """A function returning how many symbolic ("Sym") and numeric ("Num") LU and Cholesky factorisations PETSc has
    logged so far (CHOLMOD's and MUMPS's go through MatCholeskyFactorSymbolic etc.)."""
    from firedrake.petsc import PETSc

    PETSc.Log.begin()
    events = {kind: [PETSc.Log.Event(f"Mat{name}{kind}") for name in ("LUFactor", "CholFctr")]
              for kind in ("Sym", "Num")}
    return lambda: {kind: sum(event.getPerfInfo()["count"] for event in group) for kind, group in events.items()}


def warm_step_counts(**options):
    """Linear solves (Picard + Newton + chord iterations) and velocity factorisations of the 4 warm-started steps
    after a cold one: 20 km cells, 5-year steps (10-year steps, whose warm starts are farther from the root, take
    more: docs/solvers.md)."""
    from icesheet.scenarios import build_model, scenario_parameters
    from icesheet.velocity_solver import PicardOptions

    model = build_model("marine_ice_stream", scenario_parameters("marine_ice_stream",
                                                                 overrides={"mesh.cell_size": 20000.0}),
                        picard=PicardOptions(**options))
    counts = factorisation_counter()
    infos, factorisations = [], []
    for _ in range(5):
        before = counts()["Num"]
        infos.append(model.step(5.0))
        factorisations.append(counts()["Num"] - before - 1)  # one for the thickness solve
    assert all(info.final_residual <= 1e-10 for info in infos)
    return model, [info.picard_iterations + info.newton_iterations + info.chord_iterations for info in infos[1:]], \
        factorisations[1:], infos[1:]


def test_picard_newton_takes_at_most_six_linear_solves_per_warm_started_step():
    # The adaptive lag factorises the Jacobian at most twice per warm solve (none when the kept one serves).
    _, solves, factorisations, _ = warm_step_counts(strategy="picard-newton")
    assert all(1 <= count <= 6 for count in solves), solves
    assert all(count <= 2 for count in factorisations), (factorisations, solves)


@pytest.mark.parametrize("strategy", ["picard-newton", "picard-chord"])
def test_a_kept_factorisation_saves_factorisations_and_keeps_the_velocities(strategy):
    # The same 4 warm steps with and without the factorisation kept from one solve to the next: fewer factorisations
    # in all, the same velocities to the solve's tolerance.
    runs = {keep: warm_step_counts(strategy=strategy, keep_factorisation=keep) for keep in (True, False)}
    kept, fresh = (sum(runs[keep][2]) for keep in (True, False))
    assert kept < fresh, (runs[True][2], runs[False][2])
    velocities = [runs[keep][0].velocity.dat.data_ro for keep in (True, False)]
    assert relative_difference(*velocities) <= 1e-8


def test_the_default_factorises_at_most_four_times_per_warm_started_step():
    # The default on one rank, picard-chord: at most four Jacobians (each factorised once) per warm solve on this
    # coarse mesh with long steps (1-2 at 2 and 1 km: docs/solvers.md), and each chord iteration one
    # triangular-solve pair with them; no Newton iteration (the chord converged by itself).
    from icesheet.solver_options import DEFAULT_STRATEGY

    model, solves, factorisations, infos = warm_step_counts()
    assert model.velocity_solver.strategy == DEFAULT_STRATEGY == "picard-chord"
    assert all(1 <= count <= 4 for count in factorisations), (factorisations, solves)
    assert all(info.newton_iterations == info.picard_iterations == 0 for info in infos), infos
    assert all(count <= 14 for count in solves), solves


def test_newton_failing_from_a_cold_start_falls_back_to_the_picard_loop():
    # One Newton iteration cannot reach 1e-10 from the scenario's rough guess; the solver then runs the Picard loop
    # to its tolerances and Newton again (one iteration is enough from there), and says so.
    from icesheet.velocity_solver import PicardOptions

    model = coarse_model("marine_ice_stream", picard=PicardOptions(strategy="newton", newton_max_iterations=2))
    info = model.solve_velocity()
    assert info.fallback and info.picard_iterations > 0
    assert info.final_residual <= 1e-10


def test_unrolled_mode_refuses_strategies_it_cannot_tape():
    from icesheet.velocity_solver import PicardOptions

    with pytest.raises(ValueError, match="strategy = 'anderson' with adjoint_mode = 'unrolled'"):
        coarse_model("marine_ice_stream", adjoint_mode="unrolled", picard=PicardOptions(strategy="anderson"))
    model = coarse_model("marine_ice_stream", adjoint_mode="unrolled")  # "auto" is the Picard loop when unrolled
    assert model.velocity_solver.strategy == "picard"


@pytest.mark.parametrize("key, value, message", [
    ("solver.strategy", "fast", "solver.strategy = 'fast': allowed values are"),
    ("solver.linear_solver", "lu", "solver.linear_solver = 'lu': allowed values are"),
    ("solver.preconditioner", "jacobi", "solver.preconditioner = 'jacobi': allowed values are"),
    ("solver.newton_switch", 0.0, "solver.newton_switch = 0.0: must be > 0"),
    ("solver.anderson_depth", -1, "solver.anderson_depth = -1: must be >= 0"),
    ("solver.preconditioner_lag", -1, "solver.preconditioner_lag = -1: must be >= 0"),
    ("solver.rebuild_iterations", 0, "solver.rebuild_iterations = 0: must be > 0"),
    ("solver.newton_linear_tolerance", 0.0, "solver.newton_linear_tolerance = 0.0: must be > 0"),
    ("solver.chord_rebuild", 1.5, "solver.chord_rebuild = 1.5: must be <= 1"),
    ("solver.chord_depth", -1, "solver.chord_depth = -1: must be >= 0"),
    ("solver.chord_rebuild_inexact", 1.5, "solver.chord_rebuild_inexact = 1.5: must be <= 1"),
    ("solver.chord_depth_inexact", -1, "solver.chord_depth_inexact = -1: must be >= 0")])
def test_solver_table_values_are_checked_before_any_work(key, value, message):
    from icesheet.scenarios import ScenarioError, scenario_parameters

    with pytest.raises(ScenarioError, match=message):
        scenario_parameters("marine_ice_stream", overrides={key: value})


@pytest.mark.parametrize("options", [{"strategy": "picard-newton", "linear_solver": "cholesky"},
                                     {"strategy": "picard-newton", "linear_solver": "mumps"},
                                     {"strategy": "picard-newton", "linear_solver": "cg", "preconditioner": "cholesky",
                                      "preconditioner_lag": 0},
                                     {"strategy": "picard-newton", "linear_solver": "cg",
                                      "preconditioner": "asm-cholesky", "preconditioner_lag": 0},
                                     {"strategy": "picard-chord"}],
                         ids=case_id)
def test_warm_started_solves_reuse_the_symbolic_factorisation(options):
    # The operators keep their sparsity pattern, so after the first solve PETSc refactors numerically only.  The
    # first step shows that the counters see the factorisations (CHOLMOD's and MUMPS's go through PETSc's
    # MatCholeskyFactorSymbolic / MatLUFactorSymbolic and their numeric counterparts).
    from icesheet.velocity_solver import PicardOptions

    counts = factorisation_counter()
    start = counts()
    model = coarse_model("marine_ice_stream", picard=PicardOptions(**options))
    model.step(10.0)
    before = counts()
    assert before["Sym"] - start["Sym"] >= 2  # the velocity operator's and the thickness operator's
    info = model.step(10.0)
    after = counts()
    assert after["Sym"] - before["Sym"] == 0
    velocity_factorisations = after["Num"] - before["Num"] - 1  # one for the thickness solve
    linear_solves = info.picard_iterations + info.newton_iterations + info.chord_iterations
    if options["strategy"] == "picard-chord":
        # one factorisation per Jacobian the chord iteration assembles, fewer than its chord steps
        assert info.newton_iterations == 0 and info.chord_iterations >= 3, info
        assert 1 <= velocity_factorisations < linear_solves, (info, velocity_factorisations)
    elif options["linear_solver"] == "cg":
        # the adaptive lag: a factorisation at the first Jacobian, CG with it for the following Newton steps
        assert info.newton_iterations >= 3, info
        assert 1 <= velocity_factorisations < linear_solves, (info, velocity_factorisations)
    else:
        assert velocity_factorisations == linear_solves  # one per linear solve


# -- the chord iteration's safeguards (icesheet.velocity_solver.VelocitySolver._chord_solve) -----------------------
def test_the_chord_damps_a_newton_step_that_increases_the_residual():
    # From the scenario's rough guess after two Picard iterations (newton_switch = 1, relative residual ~0.7), the
    # full Newton steps of the first factorisations overshoot: the chord halves them and still converges by itself.
    from icesheet.velocity_solver import PicardOptions

    model = coarse_model("marine_ice_stream", picard=PicardOptions(strategy="picard-chord", newton_switch=1.0))
    reference = tight_reference(model, model.state_arrays())
    info = model.solve_velocity()
    assert info.picard_iterations >= 1 and info.chord_damped_steps >= 1, info
    assert info.newton_iterations == 0 and info.final_residual <= 1e-10, info
    assert relative_difference(model.velocity.dat.data_ro, reference) <= 1e-8


@pytest.mark.parametrize("options, reason", [({"newton_switch": 10.0}, "factorisations"),
                                             ({"max_iterations": 3}, "steps")], ids=["cold", "warm"])
def test_the_chord_falls_back_to_newton_and_converges(options, reason):
    # Newton with its line search takes over from the chord's last iterate when the chord gives up: cold, from the
    # rough guess with no Picard iteration (every Newton step damped, then newton_max_iterations = 20 factorisations
    # used up); warm, after max_iterations = 3 chord steps.
    from icesheet.velocity_solver import PicardOptions, VelocitySolver

    model = coarse_model("marine_ice_stream")
    if reason == "steps":
        model.step(5.0)
    reference = tight_reference(model, model.state_arrays())
    opts = PicardOptions(strategy="picard-chord", **options)
    info = VelocitySolver.for_model(model, opts).solve()
    if reason == "factorisations":
        assert info.chord_damped_steps >= 1 and info.chord_factorisations == opts.newton_max_iterations, info
    else:
        assert info.chord_iterations == opts.max_iterations, info
    assert info.newton_iterations >= 1 and not info.fallback and info.final_residual <= 1e-10, info
    assert relative_difference(model.velocity.dat.data_ro, reference) <= 1e-8


@pytest.mark.parametrize("preconditioner", ["gamg", "ilu", "asm"])
def test_the_chord_refuses_multigrid_and_incomplete_factorisations_in_the_options(preconditioner):
    # No factorisation of the matrix or of its subdomains, on any rank count: refused when the options are made,
    # before any mesh or solver.
    from icesheet.solver_options import PicardOptions, chord_operator

    assert not chord_operator("cg", preconditioner)
    with pytest.raises(ValueError, match=f"strategy = 'picard-chord' with linear_solver = 'cg', preconditioner = "
                                         f"'{preconditioner}': the chord iteration needs a Cholesky or LU "
                                         f"factorisation, of the whole matrix or of each rank's subdomain; allowed: "):
        PicardOptions(strategy="picard-chord", preconditioner=preconditioner)


@pytest.mark.parametrize(("linear_solver", "preconditioner"), [
    ("cg", "auto"), ("cg", "cholesky"), ("gmres", "lu"), ("cg", "asm-cholesky"), ("cg", "bjacobi-cholesky"),
    ("cholesky", "gamg"), ("mumps", "ilu")])
def test_the_chord_accepts_factorisations_of_the_matrix_or_of_its_subdomains(linear_solver, preconditioner):
    # Subdomain factorisations are accepted on every rank count (a Schwarz operator on several: the chord's own rule).
    from icesheet.solver_options import PicardOptions, chord_operator

    assert chord_operator(linear_solver, preconditioner)
    assert PicardOptions(strategy="picard-chord", linear_solver=linear_solver,
                         preconditioner=preconditioner).strategy == "picard-chord"


@pytest.mark.parametrize(("linear_solver", "preconditioner", "ranks", "exact", "strategy"), [
    ("cg", "auto", 1, True, "picard-chord"),
    ("cg", "auto", 2, False, "picard-chord"),  # auto is asm-cholesky on several ranks: the Schwarz chord
    ("cg", "cholesky", 2, True, "picard-chord"),
    ("cg", "lu", 2, True, "picard-chord"),
    ("gmres", "lu", 3, True, "picard-chord"),
    ("cg", "asm-cholesky", 1, True, "picard-chord"),  # one subdomain: the whole matrix
    ("cg", "asm-cholesky", 2, False, "picard-chord"),
    ("gmres", "asm-cholesky", 3, False, "picard-chord"),
    ("cg", "bjacobi-cholesky", 2, False, "picard-newton"),  # allowed for the chord, not its default
    ("cg", "gamg", 1, False, "picard-newton"),
    ("cg", "ilu", 2, False, "picard-newton"),
    ("cg", "asm", 1, False, "picard-newton"),
    ("cholesky", "gamg", 2, True, "picard-chord"),  # a direct solver ignores the preconditioner
    ("mumps", "auto", 2, True, "picard-chord"),
])
def test_exact_factorisation_and_the_auto_strategy(linear_solver, preconditioner, ranks, exact, strategy):
    from icesheet.solver_options import PicardOptions, exact_factorisation

    assert exact_factorisation(linear_solver, preconditioner, ranks) is exact
    options = PicardOptions(linear_solver=linear_solver, preconditioner=preconditioner)
    assert options.resolved_strategy("fixed-point", ranks=ranks) == strategy
    assert options.resolved_strategy("unrolled", ranks=ranks) == "picard"
