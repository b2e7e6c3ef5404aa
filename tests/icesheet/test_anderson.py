"""Anderson mixing (icesheet.anderson) against properties proved by Walker & Ni (2011, SIAM J. Numer. Anal. 49):
on a linear fixed-point map u = M u + b, AA with unbounded depth is GMRES on (I - M) u = b in disguise (their
Theorem 2.2), so it solves an n-dimensional problem in at most n + 1 iterations, and AA(0) is the plain fixed-point
iteration.  Pure numpy."""
import numpy as np
import pytest


def linear_problem(n=6, contraction=0.95, seed=1):
    """A nonsymmetric M with spectral radius ``contraction`` (slow plain iteration), b, and the exact fixed point."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigenvalues = contraction * np.linspace(-1.0, 1.0, n)
    m = q @ np.diag(eigenvalues) @ np.linalg.inv(q) + 0.01 * np.triu(rng.standard_normal((n, n)), 1)
    m *= contraction / max(abs(np.linalg.eigvals(m)))
    b = rng.standard_normal(n)
    return m, b, np.linalg.solve(np.eye(n) - m, b)


def iterate(depth, m, b, iterations):
    from icesheet.anderson import AndersonMixing

    """The iterates u_1, u_2, ... of AA(depth) from u_0 = 0."""
    mixing = AndersonMixing(depth)
    u = np.zeros_like(b)
    iterates = []
    for _ in range(iterations):
        u = mixing.mix(u, m @ u + b)
        iterates.append(u)
    return iterates


def test_full_depth_anderson_solves_a_linear_problem_in_n_plus_one_iterations():
    m, b, exact = linear_problem()
    n = len(b)
    anderson = iterate(depth=n, m=m, b=b, iterations=n + 1)
    plain = iterate(depth=0, m=m, b=b, iterations=n + 1)
    assert np.linalg.norm(anderson[-1] - exact) <= 1e-8 * np.linalg.norm(exact)
    assert np.linalg.norm(plain[-1] - exact) > 0.1 * np.linalg.norm(exact)


def test_depth_zero_is_the_plain_fixed_point_iteration():
    m, b, _ = linear_problem()
    u = np.zeros_like(b)
    for k, mixed in enumerate(iterate(depth=0, m=m, b=b, iterations=5)):
        u = m @ u + b
        assert np.array_equal(mixed, u), k


def test_anderson_iterates_are_images_of_gmres_iterates():
    # Walker & Ni, Theorem 2.2: AA without truncation from u_0 = 0 and GMRES on (I - M) x = b from x_0 = 0 satisfy
    # u_{k+1} = M x_k + b, x_k minimising ||b - (I - M) x|| over the Krylov space span{b, (I - M) b, ...} of
    # dimension k (computed here by a dense least-squares solve).
    m, b, _ = linear_problem(n=8, contraction=0.9, seed=3)
    a = np.eye(len(b)) - m
    aa = iterate(depth=len(b), m=m, b=b, iterations=5)
    for k in range(1, 5):
        krylov = np.column_stack([np.linalg.matrix_power(a, j) @ b for j in range(k)])
        coefficients, *_ = np.linalg.lstsq(a @ krylov, b, rcond=None)
        x = krylov @ coefficients
        assert np.allclose(m @ x + b, aa[k], rtol=1e-8, atol=1e-10), k


@pytest.mark.parametrize("depth", [-1, 1.5, True])
def test_depth_must_be_a_nonnegative_integer(depth):
    from icesheet.anderson import AndersonMixing

    with pytest.raises(ValueError, match="anderson depth"):
        AndersonMixing(depth)


def reference_anderson(depth, max_condition, m, b, iterations):
    """AA(depth) from the formula (Walker & Ni 2011, Algorithm AA): gamma_k = argmin ||f_k - dF_k gamma|| over the
    last ``depth`` differences (a dense least-squares solve, no Gram matrix kept), u_{k+1} = G(u_k) - dG_k gamma_k,
    the oldest difference dropped for good while cond(dF_k^T dF_k) > max_condition.  Returns the iterates and, per
    iteration, how many differences were used and whether one was dropped."""
    u = np.zeros_like(b)
    df, dg, last = [], [], None
    iterates, used, dropped = [], [], []
    for _ in range(iterations):
        g = m @ u + b
        f = g - u
        if last is not None:
            df.append(f - last[0])
            dg.append(g - last[1])
            del df[:-depth], dg[:-depth]
        last = (f, g)
        drop = False
        while df and np.linalg.cond(np.column_stack(df).T @ np.column_stack(df)) > max_condition:
            del df[0], dg[0]
            drop = True
        if df:
            gamma, *_ = np.linalg.lstsq(np.column_stack(df), f, rcond=None)
            u = g - np.column_stack(dg) @ gamma
        else:
            u = g
        iterates.append(u)
        used.append(len(df))
        dropped.append(drop)
    return iterates, used, dropped


def test_the_ring_buffer_wraps_drops_and_reuses_slots_as_the_formula_says():
    # Depth 2 over 14 iterations wraps the slots several times, and max_condition = 10 drops differences, after which
    # the freed slot is filled again: the incremental Gram matrix must give the iterates of the formula.
    from icesheet.anderson import AndersonMixing

    depth, max_condition, iterations = 2, 10.0, 14
    m, b, _ = linear_problem(n=6, contraction=0.95, seed=2)
    expected, used, dropped = reference_anderson(depth, max_condition, m, b, iterations)
    assert any(dropped[:-2]), dropped  # a drop, then iterations after it
    drop = dropped.index(True)
    assert max(used[drop + 1:]) == depth, used  # the freed slot was reused
    assert used.count(depth) >= 3, used  # full windows: the ring buffer wrapped
    mixing = AndersonMixing(depth, max_condition=max_condition)
    u = np.zeros_like(b)
    for k, want in enumerate(expected):
        u = mixing.mix(u, m @ u + b)
        assert np.linalg.norm(u - want) <= 1e-12 * np.linalg.norm(want), (k, used, dropped)
