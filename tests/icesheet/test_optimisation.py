"""The resumable L-BFGS (icesheet.optimisation): it finds known minimisers (a quadratic's A^-1 b, Rosenbrock's
(1, ..., 1)) as scipy's L-BFGS-B does, its steps meet the strong Wolfe conditions, it survives failed evaluations, a
block-diagonal initial Hessian finds the minimiser of blocks scaled 1e4 apart sooner than one gamma,
and a run stopped after any iteration and continued from the saved state gives the uninterrupted run's iterates to
the bit.  Pure Python."""
import math

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

from icesheet.optimisation import LBFGSOptions, load_state, minimise, save_state


def quadratic(n=30, seed=1):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, n))
    a = q @ q.T + n * np.eye(n)
    b = rng.standard_normal(n)
    return a, b, (lambda x: (0.5 * x @ a @ x - b @ x, a @ x - b))


def test_quadratic_minimiser():
    a, b, f = quadratic()
    state = minimise(f, np.zeros(len(b)), LBFGSOptions(gradient_tolerance=1e-7, value_tolerance=1e-300))
    assert state.stop == "gradient"
    np.testing.assert_allclose(state.x, np.linalg.solve(a, b), rtol=1e-6)


def test_rosenbrock_as_scipy():
    x0 = np.array([-1.2, 1.0, -1.2, 1.0, 0.5, 0.3])
    state = minimise(lambda x: (rosen(x), rosen_der(x)), x0, LBFGSOptions(gradient_tolerance=1e-9,
                                                                           max_iterations=500))
    assert state.stop == "gradient"
    np.testing.assert_allclose(state.x, np.ones(6), atol=1e-6)
    peer = minimize(rosen, x0, jac=rosen_der, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-15})
    np.testing.assert_allclose(state.x, peer.x, atol=1e-5)
    assert state.iteration < 3 * peer.nit  # same method, same order of work


def test_steps_meet_strong_wolfe():
    calls = []

    def f(x):
        calls.append(x.copy())
        return rosen(x), rosen_der(x)

    previous = {}

    def check(state):
        if previous:
            p = state.x - previous["x"]
            slope0 = previous["g"] @ p
            assert slope0 < 0
            assert state.value <= previous["f"] + 1e-4 * slope0
            assert abs(state.gradient @ p) <= 0.9 * abs(slope0) + 1e-12
            np.testing.assert_array_equal(calls[-1], state.x)  # the accepted point is the last evaluated
        previous.update(x=state.x.copy(), f=state.value, g=state.gradient.copy())

    minimise(f, np.array([-1.2, 1.0, 0.7]), LBFGSOptions(gradient_tolerance=1e-8, max_iterations=300),
             on_iteration=check)


def test_failed_evaluations_shorten_the_step():
    a, b, f = quadratic(5)
    solution = np.linalg.solve(a, b)

    def guarded(x):  # "the solver fails" far from the start
        return (math.inf, np.zeros_like(x)) if np.linalg.norm(x) > 0.5 * np.linalg.norm(solution) + 1e-3 \
            and np.linalg.norm(x - solution) > 0.4 * np.linalg.norm(solution) else f(x)

    state = minimise(guarded, np.zeros(5), LBFGSOptions(gradient_tolerance=1e-8, initial_step=100.0))
    np.testing.assert_allclose(state.x, solution, rtol=1e-6)


@pytest.mark.parametrize("stop_after", [0, 1, 4, 9])
def test_resume_equals_uninterrupted(tmp_path, stop_after):
    x0 = np.array([-1.2, 1.0, -1.2, 1.0, 0.5])
    options = LBFGSOptions(gradient_tolerance=1e-8, max_iterations=400, memory=4)
    path = tmp_path / "state.npz"

    def f(x):
        return rosen(x), rosen_der(x)

    def save(state):
        if state.iteration == stop_after:
            save_state(state, path, extra={"guess": state.x * 2}, metadata={"k": stop_after})

    full = minimise(f, x0, options, on_iteration=save)
    state, extra, metadata = load_state(path)
    assert state.iteration == stop_after and metadata == {"k": stop_after}
    np.testing.assert_array_equal(extra["guess"], state.x * 2)
    resumed = minimise(f, None, options, state=state)
    assert resumed.iteration == full.iteration and resumed.evaluations == full.evaluations
    np.testing.assert_array_equal(resumed.x, full.x)
    assert resumed.stop == full.stop


def test_block_scaling_finds_the_minimiser_of_badly_scaled_blocks_sooner():
    """Two blocks of variables whose curvatures differ by 1e4 (as log-friction and log-thickness do in a joint
    inversion, by 400): with a block-diagonal H^0 the method reaches the exact minimiser A^-1 b to the gradient
    tolerance; with one gamma it takes more than three times the iterations for the same tolerance."""
    rng = np.random.default_rng(3)
    n = 20
    blocks = []
    for scale in (1.0, 1e4):
        q = rng.standard_normal((n, n))
        blocks.append(scale * (q @ q.T / n + np.eye(n)))
    a = np.block([[blocks[0], 0.01 * np.ones((n, n))], [0.01 * np.ones((n, n)), blocks[1]]])
    b = rng.standard_normal(2 * n)
    runs = {scaled: minimise(lambda x: (0.5 * x @ a @ x - b @ x, a @ x - b), np.zeros(2 * n),
                             LBFGSOptions(gradient_tolerance=1e-6, value_tolerance=1e-300, max_iterations=500,
                                          block_scaling=scaled), blocks=[n, n])
            for scaled in (True, False)}
    assert runs[True].stop == "gradient"
    np.testing.assert_allclose(runs[True].x, np.linalg.solve(a, b), rtol=1e-6, atol=1e-7)
    assert runs[False].iteration > 3 * runs[True].iteration, (runs[True].iteration, runs[False].iteration)
