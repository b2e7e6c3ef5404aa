"""The 4 km MISMIP+ Ice0 state (data/mismip/ice0_4km.h5) and the first 20 years of Ice1r from it, with the MISMIP+
scenarios' physics and solver settings (Ice1r with 0.5-year steps; at its own 2-year step: an expected failure),
against the published MISMIP+ ensemble.

Oracle: the ensemble's own output, the submission files of the supplement of Cornford et al. (2020, *Results of the
third Marine Ice Sheet Model Intercomparison Project (MISMIP+)*, The Cryosphere 14, 2283), transcribed in
data/mismip/ensemble_cornford2020.json (where the files come from and how the numbers were read: its ``source`` and
``method``; docs/mismip.md, "The MISMIP+ ensemble").  We compare with the members that share our stress approximation
(SSA) and sliding law (Weertman, m = 3): CISM 1 km, ISSM 1 km and 500 m, and two PISM 1 km variants.

**Ice0.**  At t = 0 of Ice0 those members put the centreline grounding line at 442.0-456.5 km, the VAF at
3.657e13-3.911e13 m^3 and the grounded area at 37 924-38 494 km^2.  Ours (the spin-up with the steady SUPG parameter
of the thickness update, docs/mismip.md): the grounding line at 452.7 km lies inside the range.  The VAF,
3.651e13 m^3, is 0.15 % below the smallest member's (ISSM 500 m) and the grounded area, 37 920 km^2, 4 km^2 below the
smallest (PISM eta SG): the strict range check is kept as an expected failure (``xfail(strict=True)``: it reports
when the shortfall is gone).  A second check allows ours to lie below the range by the difference between one
ensemble member's 1 and 2 km results, and not above it.  No SSA-Weertman member was submitted at two resolutions
(ISSM 1 km and 500 m come from two groups), so the member is WAVI (CWI, L1L2 stresses, Weertman m = 3;
data/mismip/peer_wavi.json): the only Weertman member run at two resolutions, with the same grounding-line
treatment at both, so the change between them is resolution error alone: 0.65 % of VAF (2.38e11 m^3; 2 km is below
1 km) and 21 km^2 of grounded area.  Our cells are 4 km, coarser than either, so an error of that size is, if
anything, an underestimate of ours.

**Ice1r.**  The VAF lost, the grounded area lost and the retreat of the centreline grounding line, each from the
run's own start, after 10 and 20 years must lie in the members' ranges: 0.53e11-1.01e11 and 1.88e11-3.27e11 m^3,
379-528 and 772-1 072 km^2, 4.0-5.0 and 10.0-13.0 km (ours: 0.64e11 and 2.01e11 m^3, 496 and 840 km^2, 4.7 and
10.7 km).  What is tested is the scenario with its 2-year step replaced by 0.5-year steps (40 steps, 3 s of CPU): the
VAF lost in 20 years with 0.5- and 0.1-year steps differs by 7 %, in 100 years by 3 %.  With the scenario's own
2-year step the first decades are delayed (1.64e11 m^3 in 20 years, below the range; docs/mismip.md, "Melt at the
grounding line and the time step"): an expected failure (``xfail(strict=True)``).  The same test fails with the
settings of the MISMIP+ scenarios before 29 Nov 2026 (the transient SUPG parameter and no melt in partly grounded
cells, from their own spin-up data/mismip/ice0_4km_transient.h5, 0.5-year steps: 0.27e11 and 0.56e11 m^3, 208 and
312 km^2, 1.6 and 2.6 km).  The 100-year comparison is the convergence study's (experiments/mismip_convergence.py,
docs/mismip.md), too long for a test.
"""
import pytest

CELL = 4000.0  # m, the mesh of data/mismip/ice0_4km.h5
DT = 0.5  # yr, the Ice1r step of this test
TIMES = (10.0, 20.0)  # yr of Ice1r compared


@pytest.fixture(scope="module")
def ice0_4km():
    from firedrake.adjoint import stop_annotating

    from experiments.mismip import STATES, build, diagnostics

    with stop_annotating():
        return diagnostics(build("mismip_ice0", CELL, STATES / "ice0_4km.h5"))


def run_ice1r(dt):
    """Diagnostics (experiments.mismip.diagnostics) of Ice1r at t = 0 and at each of :data:`TIMES`, with steps of
    ``dt`` years."""
    from firedrake.adjoint import stop_annotating

    from experiments.mismip import STATES, advance, build, diagnostics

    with stop_annotating():
        model = build("mismip_ice1r", CELL, STATES / "ice0_4km.h5")
        model.time = 0.0
        records = {0.0: diagnostics(model)}
        for step in range(1, round(TIMES[-1] / dt) + 1):
            advance(model, dt)
            if step * dt in TIMES:
                records[step * dt] = diagnostics(model)
    return records


@pytest.fixture(scope="module")
def ice1r_4km():
    return run_ice1r(DT)


def published_range(key):
    from experiments.mismip import SSA_WEERTMAN, ensemble_values

    values = ensemble_values("ice0", key, 0.0, **SSA_WEERTMAN)
    assert len(values) == 5, sorted(values)  # CISM, ISSM 1 km, ISSM 500 m, PISM SG, PISM eta SG
    return min(values.values()), max(values.values())


def resolution_allowance(key):
    """|WAVI 1 km - WAVI 2 km| at t = 0 of Ice0: how much one member's ``key`` moves between 1 and 2 km cells."""
    from experiments.mismip import PEER

    return abs(PEER["WAVI 1 km"]["ice0"][key][0] - PEER["WAVI 2 km"]["ice0"][key][0])


ICE1R_KEYS = ("vaf", "grounded_area", "grounding_line")  # each compared as its decrease from t = 0


def published_ice1r_decrease(key, t):
    """{member: decrease of ``key`` after ``t`` years of Ice1r from the member's own start}."""
    from experiments.mismip import SSA_WEERTMAN, ensemble_values

    start, now = (ensemble_values("ice1r", key, s, **SSA_WEERTMAN) for s in (0.0, t))
    return {m: start[m] - now[m] for m in now}


@pytest.mark.firedrake
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="ours is below the smallest SSA-Weertman member: VAF by 0.15 % (ISSM 500 m), grounded area "
                   "by 4 km^2 (PISM eta SG)")
@pytest.mark.parametrize("key", ["vaf", "grounded_area"])
def test_ice0_vaf_and_grounded_area_lie_in_the_ensemble(ice0_4km, key):
    low, high = published_range(key)
    assert low <= ice0_4km[key] <= high, (key, ice0_4km[key], low, high)


@pytest.mark.firedrake
@pytest.mark.parametrize("key", ["vaf", "grounded_area"])
def test_ice0_vaf_and_grounded_area_lie_in_the_ensemble_or_below_by_a_resolution_error(ice0_4km, key):
    low, high = published_range(key)
    allowance = resolution_allowance(key)
    assert low - allowance <= ice0_4km[key] <= high, (key, ice0_4km[key], low, high, allowance)


@pytest.mark.firedrake
def test_ice0_centreline_grounding_line_lies_in_the_ensemble(ice0_4km):
    low, high = published_range("grounding_line")
    assert (low, high) == pytest.approx((442.0e3, 456.5e3), abs=1.0)  # the docstring's numbers
    assert low <= ice0_4km["grounding_line"] <= high, (ice0_4km["grounding_line"], low, high)


@pytest.mark.firedrake
@pytest.mark.parametrize("key", ICE1R_KEYS)
@pytest.mark.parametrize("t", TIMES)
def test_ice1r_losses_and_retreat_lie_in_the_ensemble(ice1r_4km, t, key):
    published = published_ice1r_decrease(key, t)
    assert len(published) == 5, sorted(published)
    ours = ice1r_4km[0.0][key] - ice1r_4km[t][key]
    low, high = min(published.values()), max(published.values())
    assert low <= ours <= high, (key, t, ours, low, high)


@pytest.mark.firedrake
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="with the scenario's 2-year step Ice1r at 4 km loses 1.64e11 m^3 of VAF in 20 years, below "
                   "the SSA-Weertman members' 1.88e11-3.27e11 m^3")
def test_ice1r_vaf_loss_at_the_scenarios_own_step_lies_in_the_ensemble():
    from icesheet.scenarios import scenario_parameters

    dt = scenario_parameters("mismip_ice1r")["time"]["dt"]
    assert dt == 2.0, dt  # the step this expected failure is about
    records = run_ice1r(dt)
    published = published_ice1r_decrease("vaf", TIMES[-1])
    ours = records[0.0]["vaf"] - records[TIMES[-1]]["vaf"]
    assert min(published.values()) <= ours <= max(published.values()), (ours, published)
