"""A tape of time steps of different lengths replays to the value it recorded: each step's dt is taped as the value
it had, not read back at replay time (pyadjoint replays a taped ``Constant`` at its current value, so a dt held in
one Constant was replayed with the last step's dt at every step: the models hold dt in the real space instead).

Oracle: pyadjoint's own replay, ``ReducedFunctional(J, controls)(control values)`` at the recorded control values,
must give the recorded J (to round-off), on the shallow-stream model (``IceModel``, the thickness update) and the
shallow-ice model (``SIAModel``)."""
import pytest

pytestmark = pytest.mark.firedrake


def _replayed_and_recorded(model, control, steps):
    import firedrake as fd
    from firedrake.adjoint import Control, ReducedFunctional, continue_annotation, get_working_tape, pause_annotation

    tape = get_working_tape()
    tape.clear_tape()
    continue_annotation()
    try:
        for dt in steps:
            model.step(dt)
        recorded = fd.assemble(model.thickness * model.thickness * fd.dx)
    finally:
        pause_annotation()
    replayed = ReducedFunctional(recorded, Control(control))(control)
    tape.clear_tape()
    return float(replayed), float(recorded)


@pytest.mark.parametrize("scenario, cell_size, steps", [("marine_ice_stream", 20000.0, [2.0, 8.0]),
                                                     ("halfar_dome", 100000.0, [25.0, 100.0])])
def test_a_model_replays_steps_of_different_lengths(scenario, cell_size, steps):
    from icesheet.scenarios import build_model, scenario_parameters

    model = build_model(scenario, scenario_parameters(scenario, overrides={"mesh.cell_size": cell_size}))
    replayed, recorded = _replayed_and_recorded(model, model.accumulation, steps)
    assert replayed == pytest.approx(recorded, rel=1e-12)
