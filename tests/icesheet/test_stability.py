"""The stable time step (icesheet/stability.py): sub-step counts, the physics guard's messages, and the rule on the
5 km marine ice stream that went unstable at step 18 with dt = 10 yr (issue 14)."""
import math

import pytest

from icesheet.errors import PhysicsGuardError
from icesheet.stability import Guard, TimeStepLimit, substeps


@pytest.mark.parametrize("dt, limit, expected", [
    (10.0, 2.24, 5), (10.0, 5.0, 2), (10.0, 5.0 + 1e-9, 2), (10.0, 4.999, 3), (10.0, 10.0, 1), (10.0, 50.0, 1),
    (10.0, math.inf, 1), (1e12, 1.0, 10**12),
])
def test_substeps_are_the_fewest_equal_steps_within_the_limit(dt, limit, expected):
    n = substeps(dt, limit)
    assert n == expected
    assert dt / n <= limit * (1 + 1e-12) and (n == 1 or dt / (n - 1) > limit)


def test_too_many_substeps_are_refused_naming_the_stable_step():
    from icesheet.errors import InputError

    assert substeps(100.0, 0.1, maximum=1000) == 1000
    with pytest.raises(InputError, match=r"dt = 1e\+12 yr: 5e\+11 sub-steps of the stable time step 2 yr .* "
                                         r"at most 1000 are allowed; use --dt <= 2e\+03"):
        substeps(1e12, 2.0, maximum=1000)


@pytest.mark.parametrize("value, expected", [(5.0399, 5.03), (2.0, 2.0), (1234.5, 1230.0), (0.0123456, 0.0123)])
def test_quoted_bounds_are_rounded_down(value, expected):
    from icesheet.stability import rounded_down

    assert rounded_down(value) == pytest.approx(expected, rel=1e-12) and rounded_down(value) <= value


def test_the_limit_names_what_binds():
    assert "coupling" in TimeStepLimit(2.0, 15.0).describe().split("limited by")[1]
    assert "transport" in TimeStepLimit(20.0, 15.0).describe().split("limited by")[1]
    assert TimeStepLimit(2.0, 15.0).dt == 2.0


GOOD = dict(step=3, time=30.0, volume=4e13, clamped_volume=0.0, max_thickness=1500.0, max_speed=700.0)


@pytest.mark.parametrize("change, words", [
    ({"clamped_volume": 5.5e12}, ["step 3 (t = 30 yr)", "clamp", "5.5e+12 m^3", "13.75%", "allowed: 1.00%", "--dt"]),
    ({"max_speed": 1e10}, ["speed reaches 1e+10 m/yr", "allowed: 100000 m/yr"]),
    ({"max_thickness": 1.35e5}, ["thickness reaches 1.35e+05 m", "allowed: 10000 m"]),
    ({"volume": math.nan}, ["not finite", "volume nan"]),
    ({"volume": 0.0}, ["all ice is gone"]),
])
def test_guard_stops_with_one_line_naming_step_quantity_value_and_bound(change, words):
    with pytest.raises(PhysicsGuardError) as info:
        Guard().check(**{**GOOD, **change})
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_guard_lets_a_physical_step_pass():
    Guard().check(**GOOD)
    Guard().check(**{**GOOD, "clamped_volume": 0.009 * GOOD["volume"]})
