"""``icesheet invert`` refuses bad options and observation files with one line naming the field (or the file and
the variable), before Firedrake is imported.  Pure Python: the last test checks in a fresh process that the checks
do not import Firedrake."""
import json
import subprocess
import sys

import numpy as np
import pytest

from icesheet.cli import main
from icesheet.synthetic import write_grid, write_points, write_surface_grid


@pytest.fixture
def files(tmp_path):
    x, y = np.array([0.0, 1e4, 2e4]), np.array([0.0, 1e4])
    ones = np.ones((2, 3))
    return {"grid": write_grid(tmp_path / "v.nc", x, y, ones, ones, ones, ones),
            "points": write_points(tmp_path / "p.csv", [1.0], [2.0], [3.0], [4.0], 0.5), "tmp": tmp_path}


def run(capsys, *argv):
    code = main(["invert", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("extra, expected", [
    (["--control", "basal"], "control = 'basal': choose one or more of friction, rheology, thickness"),
    (["--thickness-scale", "0"], "thickness_scale = 0.0: must be a finite number > 0"),
    (["--control", "friction,friction"], "control = 'friction,friction'"),
    (["--regularisation", "l1"], "regularisation = 'l1': choose one of tikhonov, tv"),
    (["--alpha", "-1"], "alpha = -1.0: must be a finite number > 0"),
    (["--alpha", "1,2"], "alpha = '1,2': one number > 0, or 'auto'"),
    (["--lcurve", "0.1,x"], "lcurve = '0.1,x': give comma-separated numbers"),
    (["--target", "0"], "target = 0.0: must be a finite number > 0"),
    (["--max-iterations", "0"], "max_iterations = 0: must be an integer >= 1"),
    (["--scenario", "ice_shelf_ramp"], "scenario = 'ice_shelf_ramp': has no basal friction"),
    (["--grid-names", "x,y,vx"], "grid_names = 'x,y,vx': give six comma-separated names"),
    (["--grounded-indicator", "soft"], "argument --grounded-indicator: invalid choice: 'soft'"),
    (["--dt", "0"], "dt = 0.0: must be a finite number > 0"),
    (["--substeps", "0"], "substeps = '0': an integer >= 1, or auto"),
    (["--substeps", "many"], "substeps = 'many': an integer >= 1, or auto"),
])
def test_bad_options_are_named(capsys, files, extra, expected):
    code, err = run(capsys, "--observations", str(files["grid"]), *extra)
    assert code == 2
    assert expected in err


def test_bad_observation_arguments_are_named(capsys, files):
    grid = str(files["grid"])
    for argument, expected in ((f"{grid}@soon", "the time after '@' must be a number of years"),
                               (f"{grid}@-10", "the time -10.0 must be a finite number of years >= 0"),
                               (f"{grid}@15", "the time must be a multiple of dt = 10 yr"),
                               (str(files["tmp"] / "none.nc"), "no such file")):
        code, err = run(capsys, "--observations", argument, "--dt", "10")
        assert code == 2 and expected in err, err


def test_transient_schedule_must_fit(capsys, files):
    code, err = run(capsys, "--observations", f"{files['grid']}@20", "--dt", "10", "--schedule", "store-all",
                    "--ram-slots", "1")
    assert code == 2 and "schedule 'store-all' does not fit 3 model steps" in err
    # velocities of t = 20 yr with 3 model steps per 10 yr: solved in model step 20 / (10 / 3) + 1 = 7
    code, err = run(capsys, "--observations", f"{files['grid']}@20", "--dt", "10", "--substeps", "3",
                    "--schedule", "store-all", "--ram-slots", "1")
    assert code == 2 and "schedule 'store-all' does not fit 7 model steps" in err


def test_malformed_file_is_named(capsys, files):
    bad = files["tmp"] / "bad.csv"
    bad.write_text("x,y,vx,vy\n1,2,3,4\n")
    code, err = run(capsys, "--observations", str(files["points"]), "--observations", str(bad))
    assert code == 2 and f"observations {str(bad)!r}, variable 'sigma': missing column" in err


def test_resume_checks(capsys, files):
    out = files["tmp"] / "out"
    code, err = run(capsys, "--observations", str(files["grid"]), "--out", str(out), "--resume")
    assert code == 2 and "there is no inversion to continue" in err
    (out / "state").mkdir(parents=True)
    request = {"alpha": 0.5}
    (out / "state" / "request.json").write_text(json.dumps(request))
    code, err = run(capsys, "--observations", str(files["grid"]), "--out", str(out), "--resume")
    assert code == 2 and "resume: option" in err and "differs from the interrupted run's" in err


def test_checks_do_not_import_firedrake(files):
    code = ("import sys\nfrom icesheet.cli import main\n"
            f"code = main(['invert', '--observations', {str(files['grid'])!r}, '--control', 'basal'])\n"
            "assert code == 2, code\nassert 'firedrake' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("observations, control, mode, steps, indicator", [
    (["v.nc"], "friction", "snapshot", 1, "sharp"),  # velocities of time 0: one solve at the observed geometry
    (["v.nc@0", "v.nc@20"], "friction", "transient", 3, "smooth"),  # velocities of 20 yr: solved in step 3
    (["s.nc@20"], "friction", "transient", 2, "smooth"),  # the surface of 20 yr: the thickness after 2 steps
    (["v.nc", "s.nc"], "thickness", "transient", 1, "smooth"),  # x_0's surface and x_1's velocity
    (["v.nc"], "rheology,thickness", "transient", 1, "smooth"),
])
def test_mode_and_steps_follow_the_observations_and_controls(files, observations, control, mode, steps, indicator):
    from icesheet.cli import build_parser
    from icesheet.commands.invert import prepare

    x, y = np.array([0.0, 1e4, 2e4]), np.array([0.0, 1e4])
    write_surface_grid(files["tmp"] / "s.nc", x, y, np.full((2, 3), 100.0), np.ones((2, 3)))
    argv = ["invert", "--control", control, "--dt", "10"]
    for name in observations:
        argv += ["--observations", str(files["tmp"] / name)]
    request, data = prepare(build_parser().parse_args(argv))
    assert (request.mode, request.steps) == (mode, steps)
    assert request.parameters["physics"]["grounded_indicator"] == indicator
    assert request.quantities == [d.quantity for d in data] == [
        "surface" if name.startswith("s") else "velocity" for name in observations]


def test_the_start_follows_the_data(capsys, files):
    """--start auto: the snapshot initialisation when a transient inversion has velocities of time 0 and a parameter
    control, else the prior; --start snapshot without them is refused."""
    from icesheet.cli import build_parser
    from icesheet.commands.invert import prepare

    grid = str(files["grid"])
    for observations, control, start in (([f"{grid}@0", f"{grid}@10"], "friction", "snapshot"),
                                         ([f"{grid}@10", f"{grid}@20"], "friction", "prior"),
                                         ([f"{grid}@0", f"{grid}@10"], "thickness", "prior"),
                                         ([f"{grid}@0"], "friction", "prior")):
        argv = ["invert", "--control", control, "--dt", "10"]
        for o in observations:
            argv += ["--observations", o]
        assert prepare(build_parser().parse_args(argv))[0].start == start, (observations, control)
    code, err = run(capsys, "--observations", f"{grid}@10", "--dt", "10", "--start", "snapshot")
    assert code == 2 and "start = 'snapshot': needs a transient inversion with velocity observations of time 0" in err


def test_surface_of_time_zero_needs_the_thickness_control(capsys, files):
    x, y = np.array([0.0, 1e4, 2e4]), np.array([0.0, 1e4])
    surface = write_surface_grid(files["tmp"] / "s.nc", x, y, np.full((2, 3), 100.0), np.ones((2, 3)))
    code, err = run(capsys, "--observations", str(surface), "--control", "friction")
    assert code == 2 and "surface elevations of time 0 depend on the initial thickness only, not on friction" in err


def test_a_config_choice_of_grounded_indicator_is_kept(files):
    """--grounded-indicator auto makes a transient inversion smooth, but not over a choice made in --config."""
    from icesheet.cli import build_parser
    from icesheet.commands.invert import prepare

    config = files["tmp"] / "sharp.toml"
    config.write_text('[physics]\ngrounded_indicator = "sharp"\n')
    argv = ["invert", "--control", "friction", "--dt", "10", "--config", str(config),
            "--observations", str(files["tmp"] / "v.nc@0"), "--observations", str(files["tmp"] / "v.nc@20")]
    request, _ = prepare(build_parser().parse_args(argv))
    assert request.mode == "transient"
    assert request.parameters["physics"]["grounded_indicator"] == "sharp"
