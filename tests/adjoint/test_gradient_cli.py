"""``icesheet gradient`` end to end on a small marine ice stream (40 km cells, 4 steps of 10 years).

Oracles: the gradient through every schedule equals the store-all gradient to round-off (docs/model.md, section 6:
a schedule only changes what is recomputed, not the arithmetic of a step); the counted forward and backward steps,
reads, writes and peak occupancies equal the simulator's report for the same schedule and platform (an independent
interpreter of the schedule); with --calibrate, the schedule run is H-Revolve on the calibrated platform and its
cost equals the dynamic-programming optimum there (Herrmann & Pallez 2020; docs/checkpointing.md).  Bad input fails with one line naming
the field before any model is built.
"""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

STEPS = 4
CONFIG = """
[mesh]
cell_size = 40000.0
[solver]
tolerance = 1e-2
residual_tolerance = 1e-2
"""
PLATFORMS = Path(__file__).resolve().parents[2] / "checkpointing" / "data" / "platforms"
COUNTS = ("forward_steps", "backward_steps", "reads", "writes", "peak")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "small.toml"
    path.write_text(CONFIG)
    return path


def cli_arguments(config, schedule, storage, out):
    """``icesheet gradient`` arguments: d(sum of VAF)/d(log friction) with ``schedule`` on ``storage`` (RAM
    options, and "disk" for a disk level in ``out/checkpoints``)."""
    disk = [] if "disk" not in storage else ["--disk-dir", str(out / "checkpoints")]
    return ["gradient", "--config", str(config), "--functional", "vaf", "--when", "sum", "--control", "friction",
            "--steps", str(STEPS), "--schedule", schedule, *[a for a in storage if a != "disk"], *disk,
            "--out", str(out), "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, config):
    """Cache of CLI runs by (schedule, storage options): output directory and summary."""
    cache = {}

    def run(schedule, *storage, extra=()):
        key = (schedule, storage, extra)
        if key not in cache:
            from icesheet.cli import main

            out = tmp_path_factory.mktemp(schedule)
            assert main(cli_arguments(config, schedule, storage, out) + list(extra)) == 0
            cache[key] = (out, json.loads((out / "summary.json").read_text()))
        return cache[key]

    return run


def gradient_values(out, name="gradient_log_friction"):
    import firedrake as fd

    with fd.CheckpointFile(str(out / "gradient.h5"), "r") as h5:
        mesh = h5.load_mesh()
        return np.array(h5.load_function(mesh, name).dat.data_ro)


SCHEDULES = [("recompute-all", ("--ram-slots", "1")), ("revolve", ("--ram-slots", "2")),
             ("disk-revolve", ("--ram-slots", "1", "disk")), ("hrevolve", ("--ram-slots", "1", "disk")),
             ("periodic-disk-revolve", ("--ram-slots", "1", "disk"))]


@pytest.mark.parametrize("schedule,storage", SCHEDULES, ids=[s for s, _ in SCHEDULES])
def test_schedule_gives_the_store_all_gradient_with_the_predicted_counts(runs, schedule, storage):
    from checkpointing.planners import plan
    from checkpointing.platform import INF, Level, Platform
    from checkpointing.simulator import simulate

    reference_out, reference = runs("store-all")
    out, summary = runs(schedule, *storage)
    assert summary["value"] == pytest.approx(reference["value"], rel=1e-12)
    expected = gradient_values(reference_out)
    assert np.linalg.norm(gradient_values(out) - expected) <= 1e-10 * np.linalg.norm(expected)

    ram = int(storage[1])
    platform = Platform((Level(ram),) + ((Level(INF),) if "disk" in storage else ()))
    report = simulate(plan(schedule, STEPS, platform), platform, STEPS)
    for name in COUNTS:
        assert summary["measured"][name] == getattr(report, name), name
    if "disk" in storage:
        assert summary["measured"]["writes"][1] > 0  # the disk level was used
    else:
        assert summary["measured"]["forward_steps"] > STEPS  # steps were recomputed
    rows = {row["quantity"]: row for row in csv.DictReader(open(out / "summary.csv"))}
    assert int(rows["forward_steps"]["measured"]) == int(rows["forward_steps"]["predicted"]) == report.forward_steps
    assert (out / "gradient.png").stat().st_size > 0 and (out / "gradient.pvd").is_file()
    assert not list((out / "checkpoints").glob("checkpoints-*")) if "disk" in storage else True


def test_a_shipped_platform_by_name_gives_the_store_all_gradient_on_its_costs(runs):
    """``--platform ram-disk`` (a name, resolved as ``checkpointing --platform`` does) with level 0 cut to one slot:
    the run is costed on the shipped file's levels and reproduces the store-all gradient."""
    from checkpointing.planners import plan
    from checkpointing.platform import Level, Platform, load_platform
    from checkpointing.simulator import simulate

    shipped = load_platform("ram-disk")
    ram, disk = shipped.levels
    platform = Platform((Level(1, ram.write_cost, ram.read_cost, ram.name), disk), shipped.uf, shipped.ub,
                        shipped.name)
    reference_out, _ = runs("store-all")
    out, summary = runs("hrevolve", "--platform", "ram-disk", "--ram-slots", "1", "disk")
    assert summary["platform"] == platform.to_dict()
    report = simulate(plan("hrevolve", STEPS, platform), platform, STEPS)
    assert summary["predicted"]["makespan"] == pytest.approx(report.makespan)
    assert summary["measured"]["writes"] == report.writes and report.writes[1] > 0
    expected = gradient_values(reference_out)
    assert np.linalg.norm(gradient_values(out) - expected) <= 1e-10 * np.linalg.norm(expected)


def test_calibrate_runs_the_optimal_schedule_of_the_calibrated_platform(runs):
    from checkpointing.planners import optimal_makespan, plan
    from checkpointing.platform import Platform
    from checkpointing.simulator import simulate

    out, summary = runs("hrevolve", "--ram-slots", "1", "disk", extra=("--calibrate",))
    calibration = summary["calibration"]
    assert len(calibration["forward_costs"]) == STEPS and len(calibration["backward_costs"]) == STEPS + 1
    assert all(c > 0 for c in calibration["forward_costs"] + calibration["backward_costs"])
    platform = Platform.from_dict({"uf": calibration["uf"], "ub": calibration["ub"],
                                   "levels": calibration["levels"]})
    schedule = plan("hrevolve", STEPS, platform)
    report = simulate(schedule, platform, STEPS)
    assert report.makespan == pytest.approx(optimal_makespan(STEPS, platform), rel=1e-12)
    assert calibration["predicted_makespan_uniform_costs"] == pytest.approx(report.makespan, rel=1e-12)
    for name in COUNTS:
        assert summary["measured"][name] == getattr(report, name), name
    per_step = simulate(schedule, platform, STEPS, forward_costs=calibration["forward_costs"],
                        backward_costs=calibration["backward_costs"])
    assert calibration["predicted_makespan"] == pytest.approx(per_step.makespan, rel=1e-12)
    assert calibration["measured_makespan"] > 0


@pytest.mark.mpi
def test_two_ranks_give_the_serial_gradient(tmp_path, mpi_run):
    """The same command on 2 MPI ranks (disk checkpoints written per rank): the same J, counts and gradient.

    Both with the velocity solves converged to a relative residual of 1e-12 instead of 1e-10, so that the comparison
    is of the parallel arithmetic, not of where two solvers stop: the default chord iteration has an exact
    factorisation on one rank and additive Schwarz on two (docs/solvers.md), and at 1e-10 the two gradients' first
    moment in y differed by 1.6e-10 relative (8e-12 at 1e-12)."""
    import firedrake as fd

    from icesheet.cli import main

    config = tmp_path / "tight.toml"
    config.write_text(CONFIG + "newton_tolerance = 1e-12\n")
    storage = ("--ram-slots", "1", "disk")
    serial_out = tmp_path / "serial"
    assert main(cli_arguments(config, "hrevolve", storage, serial_out)) == 0
    serial = json.loads((serial_out / "summary.json").read_text())
    parallel = mpi_run("icesheet", *cli_arguments(config, "hrevolve", storage, tmp_path / "parallel"), "--json")
    assert parallel["ranks"] == 2
    assert parallel["value"] == pytest.approx(serial["value"], rel=1e-10)
    for name in COUNTS:
        assert parallel["measured"][name] == serial["measured"][name], name

    def moments(out):
        """L2 norm and first moments of the saved gradient (independent of how the mesh was distributed)."""
        with fd.CheckpointFile(str(out / "gradient.h5"), "r") as h5:
            mesh = h5.load_mesh()
            g = h5.load_function(mesh, "gradient_log_friction")
        x, y = fd.SpatialCoordinate(mesh)
        return [fd.norm(g)] + [fd.assemble(g * w * fd.dx) for w in (1.0, x / 1e5, y / 1e4)]

    assert moments(tmp_path / "parallel") == pytest.approx(moments(serial_out), rel=1e-10)


BAD_INPUT = [
    (["--functional", "area"], "functional = 'area'"),
    (["--control", "bed"], "control = 'bed'"),
    (["--schedule", "fastest"], "schedule = 'fastest'"),
    (["--steps", "0"], "steps"),
    (["--schedule", "store-all", "--ram-slots", "2"], "ram_slots = 2"),
    (["--schedule", "revolve", "--ram-slots", "0"], "ram_slots"),
    (["--schedule", "disk-revolve", "--ram-slots", "2"], "ram_slots = 2"),
    (["--disk-dir", "{tmp}/a-file/sub"], "disk_dir"),
    (["--platform", "{tmp}/missing.toml"], "platform = "),
    (["--platform", str(PLATFORMS / "ram-disk.toml")], "disk_dir"),
    (["--platform", "ram-disk"], "disk_dir"),  # a shipped platform by name, as for checkpointing
    (["--platform", "ram-floppy"], "platform = 'ram-floppy': no such file, nor a shipped platform"),
    (["--riesz", "H2"], "riesz = 'H2'"),
    (["--when", "always"], "when = 'always'"),
    (["--adjoint-mode", "reverse"], "adjoint_mode"),
    (["--sigma", "0"], "sigma = 0"),
    (["--scenario", "halfar_dome"], "scenario = 'halfar_dome'"),
    (["--scenario", "greenland"], "scenario = 'greenland'"),
    (["--scenario", "ice_shelf_ramp", "--friction", "log"], "friction = 'log'"),
    (["--friction", "exponential"], "friction_parameterisation = 'exponential'"),
    (["--initial-state", "{tmp}/missing.h5"], "initial_state = "),
    (["--initial-state", "{tmp}/a-file"], "not an HDF5 file"),
]


@pytest.mark.parametrize("arguments,field", BAD_INPUT, ids=[b[1] for b in BAD_INPUT])
def test_bad_input_fails_with_one_line_before_any_model_is_built(arguments, field, tmp_path, capsys, monkeypatch):
    import icesheet.gradient_run as command
    from icesheet.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built despite bad input")

    monkeypatch.setattr(command, "build_model", no_model)
    (tmp_path / "a-file").write_text("not a directory")
    given = dict(zip(["--functional", "--control", "--steps"], ["volume", "thickness", "3"]))
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    for flag, value in zip(arguments[::2], arguments[1::2]):
        given[flag] = value
    argv = ["gradient", *[x for pair in given.items() for x in pair], "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0], err
    assert err[0].startswith("icesheet gradient: error: ")
    assert not (tmp_path / "out").exists()
