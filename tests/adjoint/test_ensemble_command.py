"""``icesheet ensemble``: bad input fails with one line before Firedrake is imported; a small run's summary holds
the executed counts, equal to the join simulator's prediction."""
import json

import pytest

from icesheet.cli import main


@pytest.mark.parametrize("argv, message", [
    (["--accumulations", "0.2,x", "--ram-slots", "3"], "accumulations = '0.2,x'"),
    (["--accumulations", "0.2,0.3,0.5", "--ram-slots", "2", "--steps", "3"], "ram_slots = 2: join optimum: no"),
    (["--accumulations", "0.2", "--ram-slots", "3", "--control", "thickness"], "control = 'thickness'"),
    (["--accumulations", "0.2", "--ram-slots", "3", "--schedule", "revolve"], "schedule = 'revolve'"),
])
def test_bad_input_is_one_line_naming_the_field(argv, message, capsys):
    assert main(["ensemble", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.firedrake
def test_a_small_ensemble_runs_what_the_simulator_predicts(tmp_path):
    out = tmp_path / "ensemble"
    assert main(["ensemble", "--accumulations", "0.2,0.4", "--steps", "2", "--ram-slots", "2",
                 "--mesh-size", "20000", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mismatches"] == [] and summary["measured"]["peak"][0] <= 2
    assert summary["measured"]["forward_steps"] == summary["predicted"]["forward_steps"]
    assert summary["value"] > 0 and summary["gradient_norm"] > 0
    assert (out / "gradient.pvd").exists()


@pytest.mark.firedrake
@pytest.mark.mpi
def test_two_ranks_give_the_serial_ensemble_gradient(tmp_path, mpi_run, capsys):
    argv = ["ensemble", "--accumulations", "0.2,0.4", "--steps", "2", "--ram-slots", "2", "--mesh-size", "40000"]
    assert main([*argv, "--out", str(tmp_path / "serial"), "--json"]) == 0
    serial = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    parallel = mpi_run("icesheet", *argv, "--out", str(tmp_path / "mpi"), "--json")
    assert parallel["ranks"] == 2 and parallel["mismatches"] == []
    assert parallel["value"] == pytest.approx(serial["value"], rel=1e-12)
    assert parallel["gradient_norm"] == pytest.approx(serial["gradient_norm"], rel=1e-10)
    assert parallel["measured"] == serial["measured"]
