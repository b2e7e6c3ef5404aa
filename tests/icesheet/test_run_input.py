"""``icesheet run`` rejects bad input with a one-line error naming the field, before Firedrake is imported.

Pure Python: this module must never import Firedrake (the last test checks, in a fresh process, that the checks
do not).
"""
import subprocess
import sys
from pathlib import Path

import pytest

from icesheet.cli import main
from icesheet.scenarios import SCENARIOS, scenario_parameters


def run_cli(capsys, *argv):
    code = main(["run", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--scenario", "greenland"], "scenario = 'greenland': unknown; available scenarios:"),
    (["--dt", "0"], "time.dt = 0.0: must be > 0"),
    (["--dt", "-2.5"], "time.dt = -2.5: must be > 0"),
    (["--dt", "nan"], "time.dt = nan: must be finite"),
    (["--steps", "-1"], "time.steps = -1: must be >= 0"),
    (["--mesh-size", "0"], "mesh.cell_size = 0.0: must be > 0"),
    (["--mesh", "/nonexistent/mesh.msh"], "mesh.file = '/nonexistent/mesh.msh': no such file"),
    (["--config", "/nonexistent/config.toml"], "config = '/nonexistent/config.toml': no such file"),
    (["--initial-state", "/nonexistent/state.h5"], "initial_state = '/nonexistent/state.h5': no such file"),
])
def test_bad_command_line_values_are_named(capsys, argv, expected):
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert expected in err


@pytest.mark.parametrize("config, expected", [
    ("[time]\ndt_years = 3.0\n", "unknown config key 'time.dt_years'; allowed keys:"),
    ("[physics]\ndt = 3.0\n", "unknown config key 'physics.dt'"),
    ("[physics]\ngrounded_indicator = \"soft\"\n",
     "physics.grounded_indicator = 'soft': allowed values are ('sharp', 'smooth')"),
    ("[physics]\ngrounding_width = 0.0\n", "physics.grounding_width = 0.0: must be > 0"),
    ("dt = 3.0\n", "'dt' must be a [section] table"),
    ("[ice]\nfront_thickness = -10.0\n", "ice.front_thickness = -10.0: must be >= 0"),
    ("[ice]\nfront_thickness = nan\n", "ice.front_thickness = nan: must be finite"),
    ("[ice]\nfriction = \"high\"\n", "ice.friction = 'high': must be a number"),
    ("[time]\nsteps = 2.5\n", "time.steps = 2.5: must be an integer"),
    ("[solver]\nadjoint_mode = \"reverse\"\n", "solver.adjoint_mode = 'reverse': allowed values are"),
    ("[time\n", "not valid TOML"),
])
def test_bad_config_files_are_named(capsys, tmp_path, config, expected):
    path = tmp_path / "config.toml"
    path.write_text(config)
    code, err = run_cli(capsys, "--config", str(path))
    assert code == 2
    assert expected in err


def test_config_overrides_defaults_and_command_line_overrides_config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[time]\ndt = 3.0\nsteps = 7\n[ice]\nfriction = 0.02\n")
    parameters = scenario_parameters("marine_ice_stream", path, {"time.steps": 2})
    assert parameters["time"] == {"dt": 3.0, "steps": 2}
    assert parameters["ice"]["friction"] == 0.02


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_registered_scenario_has_a_valid_parameter_file(name):
    parameters = scenario_parameters(name)
    assert parameters["time"]["dt"] > 0


def test_input_checks_do_not_import_firedrake():
    code = ("import sys; from icesheet.cli import main; assert main(['run', '--dt', '0']) == 2; "
            "assert 'firedrake' not in sys.modules, 'firedrake imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
