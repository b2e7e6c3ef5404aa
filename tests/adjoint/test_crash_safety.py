"""Crash safety of the disk tier: a run killed with SIGKILL in its backward phase leaves an orphan that the next
run reports and removes; SIGTERM cleans up like SIGINT; directories the tier created go when empty."""
import logging
import math
import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.firedrake

# the toy gradient (tests/support/toy_gradient.py), as a command (tests/ on its PYTHONPATH) and in-process
TOY_GRADIENT = [sys.executable, "-m", "support.toy_gradient"]
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLATFORM = "2:0:0,inf:2:2"  # Disk-Revolve puts x_0 on disk for the whole run
STEPS = 10


def toy_gradient_summary(*args, **kwargs):
    from support.toy_gradient import toy_gradient_summary as summary

    return summary(*args, **kwargs)


def start_held_run(disk):
    """A toy gradient run with a disk level, held at backward step 5 (x_0 on disk); returns the process once it
    holds there."""
    proc = subprocess.Popen(TOY_GRADIENT + ["--cells", "6", "--steps", str(STEPS), "--planner", "disk-revolve",
                                            "--platform", PLATFORM, "--directory", str(disk),
                                            "--hold-at-backward", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)))
    line = proc.stdout.readline()
    if line.strip() != "holding at backward step 5":
        proc.kill()
        raise AssertionError(f"the run did not reach backward step 5: {line!r} {proc.communicate()}")
    return proc


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_sigkill_mid_backward_leaves_an_orphan_that_the_next_run_reports_and_removes(tmp_path, caplog):
    from checkpointing.platform import Platform

    disk = tmp_path / "disk"
    proc = start_held_run(disk)
    held = files_under(disk)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    (run_directory,) = {f.split("/")[0] for f in held}
    assert proc.returncode == -signal.SIGKILL
    assert files_under(disk) == held and f"{run_directory}/x0.rank0.bin" in held  # nothing could clean up
    assert f"{run_directory}/owner.json" in held

    with caplog.at_level(logging.WARNING, logger="checkpointing.rundirs"):
        summary = toy_gradient_summary(6, STEPS, "disk-revolve", Platform.from_spec(PLATFORM), [disk])
    assert math.isfinite(summary["J"])
    (message,) = [r.getMessage() for r in caplog.records if run_directory in r.getMessage()]
    assert "removed the orphaned checkpoint directory" in message and f"pid {proc.pid}" in message
    assert f"{len(held) - 1} files" in message  # the checkpoints, without the owner record
    assert files_under(disk) == []


def test_sigterm_mid_backward_removes_the_checkpoints_and_the_directories_created(tmp_path):
    disk = tmp_path / "new" / "disk"
    proc = start_held_run(disk)
    assert files_under(disk)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not (tmp_path / "new").exists(), files_under(tmp_path)


def test_a_directory_holding_user_files_stays(tmp_path):
    from checkpointing.platform import Platform

    disk = tmp_path / "disk"
    disk.mkdir()
    (disk / "notes.txt").write_text("mine")
    summary = toy_gradient_summary(6, STEPS, "disk-revolve", Platform.from_spec(PLATFORM), [disk])
    assert math.isfinite(summary["J"])
    assert files_under(disk) == ["notes.txt"] and (disk / "notes.txt").read_text() == "mine"
    assert os.listdir(disk) == ["notes.txt"]
