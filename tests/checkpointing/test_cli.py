"""The command line: its numbers are the simulator's on the planner's schedule, and bad input gets one line."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import checkpointing
from checkpointing.cli import main
from checkpointing.planners import PLANNERS, optimal_makespan, plan
from checkpointing.platform import Platform
from checkpointing.simulator import simulate

REPO = Path(__file__).resolve().parents[2]

PLATFORM_DIR = Path(checkpointing.__file__).parent / "data" / "platforms"  # the files in the source tree


def run(argv):
    out = io.StringIO()
    status = main(argv, out=out)
    return status, out.getvalue()


@pytest.mark.parametrize("algorithm, where", [("revolve", ["--levels", "3:0:0"]),
                                              ("store-all", ["--levels", "4:0:0,inf:2:3"]),
                                              ("hrevolve", ["--platform", "ram-ssd-pfs"]),
                                              ("disk-revolve", ["--platform", str(PLATFORM_DIR / "ram-disk.toml")])])
def test_plan_json_equals_simulate_of_plan(algorithm, where):
    status, text = run(["plan", "--steps", "25", *where, "--algorithm", algorithm, "--ub", "2.5", "--json",
                        "--actions"])
    assert status == 0
    result = json.loads(text)
    if where[0] == "--levels":
        platform = Platform.from_spec(where[1], 1.0, 2.5)
    else:
        path = where[1] if where[1].endswith(".toml") else PLATFORM_DIR / f"{where[1]}.toml"
        platform = Platform.from_toml(path).with_costs(ub=2.5)
    actions = plan(algorithm, 25, platform)
    report = simulate(actions, platform, 25)
    for key in ("makespan", "forward_steps", "reads", "writes", "peak"):
        assert result[key] == getattr(report, key), key
    assert result["algorithm"] == algorithm and result["steps"] == 25
    assert len(result["levels"]) == platform.n_levels
    assert result["actions"] == [str(a) for a in actions]
    assert result["makespan_peer_convention"] == report.makespan + 26 * platform.uf


def test_plan_human_readable():
    status, text = run(["plan", "--steps", "10", "--levels", "2:0:0,inf:1:1", "--algorithm", "revolve", "--actions"])
    assert status == 0
    platform = Platform.from_spec("2:0:0,inf:1:1")
    actions = plan("revolve", 10, platform)
    report = simulate(actions, platform, 10)
    assert f"makespan {report.makespan:g}" in text
    assert f"forward steps {report.forward_steps}" in text
    assert text.rstrip().splitlines()[-len(actions):] == [f"  {a}" for a in actions]


def test_per_step_costs(tmp_path):
    fwd, bwd = [1.0, 2.0, 0.5, 4.0, 1.0, 3.0], [1.0, 1.0, 2.0, 1.0, 5.0, 1.0, 2.0]
    (tmp_path / "bwd.txt").write_text("\n".join(map(str, bwd)))
    status, text = run(["plan", "--steps", "6", "--levels", "2:0:0,inf:1:1", "--algorithm", "nonuniform",
                        "--forward-costs", ",".join(map(str, fwd)), "--backward-costs", f"@{tmp_path / 'bwd.txt'}",
                        "--json"])
    assert status == 0
    result = json.loads(text)
    platform = Platform.from_spec("2:0:0,inf:1:1")
    actions = plan("nonuniform", 6, platform, forward_costs=fwd, backward_costs=bwd)
    assert result["makespan"] == simulate(actions, platform, 6, forward_costs=fwd, backward_costs=bwd).makespan
    assert "makespan_peer_convention" not in result


def test_uf_default_and_override():
    _, text = run(["plan", "--steps", "6", "--levels", "2:0:0", "--algorithm", "revolve", "--json"])
    _, text2 = run(["plan", "--steps", "6", "--levels", "2:0:0", "--algorithm", "revolve", "--json", "--uf", "3"])
    base, scaled = json.loads(text), json.loads(text2)
    assert (base["uf"], base["ub"], scaled["uf"]) == (1.0, 1.0, 3.0)
    assert scaled["makespan"] - base["makespan"] == 2 * base["forward_steps"]


def test_infinite_capacity_is_valid_json():
    _, text = run(["plan", "--steps", "5", "--levels", "inf:0:0", "--algorithm", "store-all", "--json"])
    assert json.loads(text)["levels"][0]["capacity"] == "inf"


def test_compare_ratios_are_at_least_one():
    status, text = run(["compare", "--steps", "30", "--platform", "ram-disk", "--json"])
    assert status == 0
    result = json.loads(text)
    platform = Platform.from_toml(PLATFORM_DIR / "ram-disk.toml")
    assert result["optimal_makespan"] == pytest.approx(optimal_makespan(30, platform))
    rows = {row["algorithm"]: row for row in result["algorithms"]}
    assert set(rows) == set(PLANNERS)
    assert rows["hrevolve"]["ratio"] == pytest.approx(1.0)
    for row in rows.values():
        assert row["makespan"] is None or row["ratio"] >= 1 - 1e-12


def test_compare_with_peer_on_the_known_case():
    """The peer's HRevolve on (2 RAM, 20 disk), uf = 1, ub = 5, l = 60 reports 586 in its convention, i.e.
    586 - 61 = 525 in ours (docs/references.md, checkpoint_schedules); our optimum is 478."""
    status, text = run(["compare", "--steps", "60", "--platform", "ram2-disk20", "--peer", "--json"])
    assert status == 0
    rows = {row["algorithm"]: row for row in json.loads(text)["algorithms"]}
    assert rows["peer:HRevolve"]["makespan"] == pytest.approx(586 - 61)
    assert rows["hrevolve"]["makespan"] == pytest.approx(478)
    assert rows["peer:Revolve"]["makespan"] == pytest.approx(rows["revolve"]["makespan"])


def test_platforms_lists_the_shipped_files():
    status, text = run(["platforms", "--json"])
    rows = json.loads(text)
    assert status == 0 and {Path(r["file"]).stem for r in rows} == {p.stem for p in PLATFORM_DIR.glob("*.toml")}


BAD = [
    (["plan", "--steps", "x", "--levels", "2:0:0", "--algorithm", "revolve"], "--steps", 2),
    (["plan", "--steps", "-3", "--levels", "2:0:0", "--algorithm", "revolve"], "--steps", 2),
    (["plan", "--steps", "2.5", "--levels", "2:0:0", "--algorithm", "revolve"], "--steps", 2),
    (["plan", "--steps", "5", "--levels", "2:0:0", "--algorithm", "bogus"], "--algorithm", 2),
    (["plan", "--steps", "5", "--levels", "2:0", "--algorithm", "revolve"], "--levels", 2),
    (["plan", "--steps", "5", "--levels", "2:0:-1", "--algorithm", "revolve"], "read_cost", 2),
    (["plan", "--steps", "5", "--levels", "2:0:0", "--ub", "-1", "--algorithm", "revolve"], "--ub", 2),
    (["plan", "--steps", "5", "--platform", "no/such/file.toml", "--algorithm", "revolve"], "--platform", 2),
    (["plan", "--steps", "5", "--algorithm", "revolve"], "--platform", 2),
    (["plan", "--steps", "5", "--levels", "2:0:0", "--platform", "ram-disk", "--algorithm", "revolve"],
     "--platform", 2),
    (["plan", "--steps", "5", "--levels", "2:0:0"], "--algorithm", 2),
    (["plan", "--steps", "5", "--levels", "2:0:0", "--algorithm", "store-all"], "store-all", 3),
    (["plan", "--steps", "5", "--levels", "2:0:0", "--algorithm", "revolve", "--option", "nope"], "--option", 2),
    (["frobnicate"], "frobnicate", 2),
    (["compare", "--steps", "5", "--platform", "ram-ssd-pfs", "--peer"], "--peer", 2),
    (["plan", "--steps", "4", "--levels", "2:0:0", "--algorithm", "nonuniform", "--forward-costs", "1,2,x"],
     "--forward-costs", 2),
    (["plan", "--steps", "4", "--levels", "2:0:0", "--algorithm", "nonuniform", "--forward-costs", "1,2,3"],
     "forward_costs", 2),
]


@pytest.mark.parametrize("argv, field, status", BAD, ids=[" ".join(b[0][1:]) for b in BAD])
def test_bad_input_exits_with_one_line_naming_the_field(argv, field, status, capsys):
    code, out = run(argv)
    err = capsys.readouterr().err
    assert code == status and out == ""
    assert err.count("\n") == 1 and field in err and "Traceback" not in err


def test_bad_platform_file(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text("[[levels]]\ncapacity = -1\n")
    code, _ = run(["plan", "--steps", "5", "--platform", str(path), "--algorithm", "revolve"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "capacity" in err and "-1" in err


def test_module_entry_point_as_subprocess():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "checkpointing", "plan", "--steps", "12", "--platform",
                           "ram2-disk20", "--algorithm", "hrevolve", "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    platform = Platform.from_toml(PLATFORM_DIR / "ram2-disk20.toml")
    assert result["makespan"] == simulate(plan("hrevolve", 12, platform), platform, 12).makespan
    bad = subprocess.run([sys.executable, "-m", "checkpointing", "plan", "--steps", "-1", "--levels", "1:0:0",
                          "--algorithm", "revolve"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--steps" in bad.stderr
