"""The flagship gradient (experiments/mismip_flagship.py) at a coarse size: MISMIP+ Ice1r at 8 km from the 8 km
spin-up state (data/mismip/ice0_8km.h5), 6 steps of 0.5 yr, J = the final VAF, controls the melt factor and C,
through H-Revolve on a calibrated RAM + disk platform (2 + 2 slots).

Oracles: the Taylor remainder |J(p + eps h) - J(p) - eps dJ[h]| of untaped forward runs falls as eps^2 (order ~2
between halvings of eps; a wrong gradient leaves order 1).  The perturbations are small (eps h of 1e-3 to 2.5e-4 of
the melt factor, 1e-6 to 2.5e-7 of C): the grounded indicator jumps at quadrature points, so larger ones move points
across flotation and J is only piecewise smooth (docs/mismip.md).  The run's counts equal the simulator's report for
its schedule (and the forecast of the rest was made from the first sweep's steps); ``icesheet gradient
--initial-state`` gives the J of the same forward run.
"""
import json
import math

import pytest

pytestmark = pytest.mark.firedrake

CELL_SIZE, STEPS, DT = 8000.0, 6, 0.5
EPSILONS = (1e-3, 5e-4, 2.5e-4)


@pytest.fixture(scope="module")
def flagship(tmp_path_factory):
    import firedrake as fd

    from experiments.mismip import STATES, build
    from experiments.mismip_flagship import flagship_gradient

    state = STATES / "ice0_8km.h5"
    model = build("mismip_ice1r", CELL_SIZE, state)
    run = flagship_gradient(model, STEPS, DT, ram_slots=2, disk_slots=2,
                            disk_dir=tmp_path_factory.mktemp("disk"), calibration_steps=2)
    x, y = fd.SpatialCoordinate(model.mesh)
    Q = model.thickness.function_space()
    directions = {"melt": fd.Function(Q).interpolate(1.0 + 0.5 * fd.cos(x / 1e5)),
                  "friction": fd.Function(Q).interpolate(1e-3 * fd.cos(y / 2e4))}
    return {"model": model, "run": run, "directions": directions, "state": state}


def forward_vaf(model, control, change):
    """J after STEPS untaped steps with ``control`` raised by ``change`` (control and state put back)."""
    from experiments.mismip_sensitivity import untaped_value
    from icesheet.functionals import build_functional

    return untaped_value(model, build_functional(model, "vaf", STEPS), STEPS, control, change, dt=DT)


def test_the_run_does_what_the_simulator_counts(flagship):
    run = flagship["run"]
    counters = run["gradient"].result.counters
    assert counters.mismatches(run["predicted"]) == []
    assert counters.forward_steps > STEPS  # two RAM + two disk slots for 6 steps: some steps are recomputed
    assert counters.writes[1] >= 1  # the disk tier is used
    forecast = run["forecast"]  # made when the first sweep reached x_l, from exactly its STEPS untaped steps
    assert len(forecast.first_sweep_costs) == STEPS and set(forecast.predictions) == {"constant", "forward"}


@pytest.mark.parametrize("control", ["melt", "friction"])
def test_taylor_remainder_is_second_order(flagship, control):
    from icesheet.controls import control_function

    model, gradient = flagship["model"], flagship["run"]["gradient"]
    parameter = control_function(model, control)
    h = flagship["directions"][control]
    slope = float(gradient.derivative[control].dat.inner(h.dat))
    assert slope != 0
    base = forward_vaf(model, parameter, 0.0 * h)
    assert base == pytest.approx(gradient.value, rel=1e-10)
    remainders = [abs(forward_vaf(model, parameter, eps * h) - base - eps * slope) for eps in EPSILONS]
    orders = [math.log2(r0 / r1) for r0, r1 in zip(remainders, remainders[1:])]
    assert min(orders) >= 1.9, (remainders, orders, slope)


def test_gradient_command_reads_the_initial_state(flagship, tmp_path):
    """``icesheet gradient --initial-state``: the J it reports is the final VAF of the forward run from that state."""
    from icesheet.cli import main

    out = tmp_path / "gradient"
    assert main(["gradient", "--scenario", "mismip_ice1r", "--initial-state", str(flagship["state"]),
                 "--mesh-size", str(CELL_SIZE), "--functional", "vaf", "--control", "melt", "--steps", str(STEPS),
                 "--dt", str(DT), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["initial_state"] == str(flagship["state"])
    assert summary["value"] == pytest.approx(flagship["run"]["gradient"].value, rel=1e-10)


@pytest.mark.parametrize("argv, words", [
    (["--size", "3km"], ["--size", "'3km'", "default", "full", "1km"]),
    (["--full", "--size", "1km"], ["--size", "'1km'", "--full"]),
    (["--full", "--steps", "1001"], ["--steps", "1001", "1..1000", "'full'"]),
    (["--steps", "0"], ["--steps", "0", "1..40", "'default'"]),
])
def test_a_bad_size_gets_one_clear_line_before_any_run(tmp_path, capsys, argv, words):
    """``--size`` names one of the sizes; a wrong one (or one that contradicts ``--full``) stops the command with
    one line naming the option, the value and what is allowed, before anything is made in ``--out``."""
    from experiments.mismip_flagship import main

    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "out"), *argv])
    assert stop.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert all(word in line for word in words), line
    assert not (tmp_path / "out").exists()


def test_step_costs_recover_every_step_of_a_known_timeline():
    """step_costs on the events of a timeline built by hand (3 forward steps of 1, 2, 3 s, one recomputed step
    of 4 s, backward steps re-taping in 0.5 s and differentiating in 1.5 s, 0.25 s of reads between them): the
    forward rows are the steps' times with the first sweep marked, each backward row the 2 s (+ the read that
    follows) from its re-taped step's start to the next step's start."""
    from experiments.mismip_flagship import step_costs

    clock, events = 0.0, []

    def step(taped, seconds, adjoint=0.0, gap=0.0):
        nonlocal clock
        clock += seconds
        events.append((taped, seconds, clock, 1, 2, 3))
        clock += adjoint + gap

    for seconds in (1.0, 2.0, 3.0):
        step(False, seconds)
    step(True, 0.5, 1.5, 0.25)   # B_2
    step(False, 4.0)             # x_1 from x_0 again
    step(True, 0.5, 1.5)         # B_1
    step(True, 0.5, 1.5, 0.25)   # B_0, then the run returns
    rows = step_costs(events, clock, steps=3)
    assert [(r["kind"], r["sweep"]) for r in rows] == [("forward", "first")] * 3 + [
        ("backward", ""), ("forward", "recomputed"), ("backward", ""), ("backward", "")]
    assert [r["seconds"] for r in rows] == pytest.approx([1.0, 2.0, 3.0, 2.25, 4.0, 2.0, 2.25])
    assert [r["retape_seconds"] for r in rows if r["kind"] == "backward"] == [0.5, 0.5, 0.5]
    assert {(r["picard_iterations"], r["newton_iterations"], r["chord_iterations"]) for r in rows} == {(1, 2, 3)}
