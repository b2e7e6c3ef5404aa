"""The stable time step and the physics guard on real runs: the 5 km marine ice stream that went unstable at step 18
with dt = 10 yr (issue 14) runs stably with the default time step, the same run without the rule is stopped by the
guard and keeps its steps, and any stop leaves a partial summary."""
import csv
import json

import pytest

pytestmark = pytest.mark.firedrake


def read_rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_5km_default_run_is_split_into_stable_sub_steps_and_clamps_nothing(tmp_path, caplog):
    from icesheet.cli import main

    out = tmp_path / "run"
    with caplog.at_level("WARNING", logger="icesheet.model"):
        assert main(["run", "--mesh-size", "5000", "--no-progress", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = read_rows(out / "steps.csv")
    assert not summary["partial"] and summary["steps"] == 20 and summary["final_time"] == 200.0
    assert summary["max_clamped_fraction"] < 1e-3  # the goal; without the rule: 12 % at step 18
    assert all(float(r["clamped_volume"]) <= 1e-3 * float(r["volume"]) for r in rows)
    substeps = [int(r["substeps"]) for r in rows[1:]]
    assert min(substeps) >= 2 and summary["total_substeps"] == sum(substeps)
    assert any("is split into" in r.getMessage() and "coupling" in r.getMessage() for r in caplog.records)
    # the volume grows by the accumulation (0.3 m/yr over 5.12e10 m^2 is 1.5e10 m^3/yr) minus the calving flux
    growth = [float(b["volume"]) - float(a["volume"]) for a, b in zip(rows, rows[1:])]
    assert all(0 < g < 10 * 0.3 * 640e3 * 80e3 for g in growth)


@pytest.mark.slow
def test_5km_dt_10_without_the_rule_is_stopped_by_the_guard_and_keeps_its_steps(tmp_path):
    from icesheet.errors import PhysicsGuardError
    from icesheet.output import RunWriter
    from icesheet.scenarios import build_model, scenario_parameters

    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": 5000.0})
    model = build_model("marine_ice_stream", parameters)
    writer = RunWriter(tmp_path / "run")
    with pytest.raises(PhysicsGuardError) as info:
        model.run(20, 10.0, progress=False, on_step=writer.on_step, stable=False)
    message = str(info.value)
    step = int(message.split()[1])
    assert 15 <= step <= 20 and "use a smaller time step" in message, message
    summary = writer.finish(model, "marine_ice_stream", parameters, stopped=message)
    rows = read_rows(tmp_path / "run" / "steps.csv")
    assert [int(r["step"]) for r in rows] == list(range(step + 1))  # the failing step is kept too
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["partial"] is True
    assert summary["steps"] == step and summary["stopped"] == message


def test_a_failed_step_keeps_the_steps_before_it_and_marks_the_summary_partial(tmp_path, monkeypatch):
    import firedrake

    from icesheet.cli import main
    from icesheet.model import IceModel

    step, calls = IceModel.step, []

    def failing_third_step(self, dt, hint=None):
        calls.append(dt)
        if len(calls) == 3:
            raise firedrake.ConvergenceError("injected by the test")
        return step(self, dt, hint)

    monkeypatch.setattr(IceModel, "step", failing_third_step)
    out = tmp_path / "run"
    status = main(["run", "--mesh-size", "40000", "--steps", "4", "--dt", "1", "--no-progress", "--out", str(out)])
    assert status == 5
    rows = read_rows(out / "steps.csv")
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["partial"] and "step 3" in summary["stopped"] and "injected by the test" in summary["stopped"]


def test_a_failed_initial_velocity_solve_is_step_0_with_what_to_check(tmp_path, capsys):
    """A solver that cannot converge (Picard limited to 1 iteration) fails the velocity solve at the initial state:
    one line naming step 0, the solver's reason and what to check, status 5; nothing was computed, so nothing is
    written."""
    from icesheet.cli import main

    config = tmp_path / "one_iteration.toml"
    config.write_text("[solver]\nstrategy = \"picard\"\nmax_iterations = 1\n")
    out = tmp_path / "run"
    status = main(["run", "--mesh-size", "40000", "--steps", "2", "--config", str(config), "--no-progress",
                   "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 5 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if ": error: " in line]
    assert "step 0, the velocity solve at the initial state" in line and "max_iterations = 1" in line
    assert "[solver] options" in line
    assert not (out / "summary.json").exists() and not (out / "steps.csv").exists()


def start_long_run(out):
    """``icesheet run`` of many small steps in a subprocess; returns it once two steps are in steps.csv."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "icesheet", "run", "--mesh-size", "40000", "--steps", "1000",
                             "--dt", "0.5", "--no-progress", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "steps.csv").is_file() and len((out / "steps.csv").read_text().splitlines()) >= 4:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the run did not write two steps: {proc.communicate()}")


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_killed_run_keeps_its_steps(tmp_path, signal_name):
    import signal

    out = tmp_path / "run"
    proc = start_long_run(out)
    proc.send_signal(getattr(signal, signal_name))
    _, err = proc.communicate(timeout=120)
    rows = read_rows(out / "steps.csv")
    assert len(rows) >= 3 and [int(r["step"]) for r in rows] == list(range(len(rows)))
    assert all(float(r["volume"]) > 0 for r in rows)
    if signal_name == "SIGTERM":
        assert proc.returncode == 143 and err.strip().splitlines()[-1] == "icesheet run: error: terminated by SIGTERM"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["partial"] and summary["stopped"] == "terminated by SIGTERM"
        assert summary["steps"] == len(rows) - 1
    else:
        assert proc.returncode == -signal.SIGKILL and not (out / "summary.json").exists()


def test_a_gradient_with_a_given_dt_above_the_stable_one_is_refused(tmp_path, capsys):
    """A gradient's steps are not split (the schedule is planned for l = --steps): a --dt above the stable time step
    at the initial state is refused before any step; the scenario's default dt is divided instead."""
    from icesheet.cli import main

    common = ["gradient", "--functional", "vaf", "--control", "friction", "--steps", "2", "--mesh-size", "20000",
              "--no-progress"]
    assert main(common + ["--dt", "10", "--out", str(tmp_path / "given")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dt = 10 yr: above the stable time step" in err and "use --dt <=" in err
    assert not (tmp_path / "given").exists()
    limit = float(err.split("above the stable time step ")[1].split()[0])
    assert main(common + ["--out", str(tmp_path / "default")]) == 0
    summary = json.loads((tmp_path / "default" / "summary.json").read_text())
    parts = round(10.0 / summary["dt"])
    assert summary["dt"] == pytest.approx(10.0 / parts) and summary["dt"] <= limit < 10.0 / (parts - 1)
    assert summary["steps"] == 2  # l unchanged
