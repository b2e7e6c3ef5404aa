"""The manager gives the same J, gradients and counts on 1 and 2 MPI ranks, with checkpoints on two disk levels."""
import pytest

pytestmark = [pytest.mark.firedrake, pytest.mark.mpi]

PLATFORM = "1:0:0,1:0.5:0.5,inf:1:1"  # RAM, a fast disk directory, a slow disk directory


def test_two_ranks_match_one_rank_through_hrevolve_on_disk(tmp_path, mpi_run):
    from support.toy_gradient import toy_gradient_summary
    from checkpointing.platform import Platform

    serial_dirs = [tmp_path / "serial-ssd", tmp_path / "serial-pfs"]
    serial = toy_gradient_summary(8, 10, "hrevolve", Platform.from_spec(PLATFORM), serial_dirs)
    parallel_dirs = [tmp_path / "mpi-ssd", tmp_path / "mpi-pfs"]
    parallel = mpi_run("support.toy_gradient", "--cells", "8", "--steps", "10", "--planner", "hrevolve",
                       "--platform", PLATFORM, "--directory", str(parallel_dirs[0]),
                       "--directory", str(parallel_dirs[1]))
    assert parallel["ranks"] == 2 and serial["ranks"] == 1
    assert parallel["J"] == pytest.approx(serial["J"], rel=1e-12)
    for key in ("gradient_norms", "directional_derivatives"):
        assert parallel[key] == pytest.approx(serial[key], rel=1e-10), key
    assert parallel["counters"] == serial["counters"]
    assert serial["counters"]["writes"][1] > 0 and serial["counters"]["writes"][2] > 0, "both disk levels used"
    for c in (parallel, serial):
        predicted = {k: v for k, v in c["predicted"].items() if k != "makespan"}
        assert c["counters"] == predicted
    assert not [p for d in serial_dirs + parallel_dirs for p in d.rglob("*")], "checkpoint files left behind"


def test_a_checkpoint_corrupted_on_one_rank_stops_both_ranks_with_the_same_error(tmp_path, mpi_run):
    directories = [tmp_path / "ssd", tmp_path / "pfs"]
    report = mpi_run("support.toy_gradient", "--cells", "8", "--steps", "10", "--planner", "hrevolve",
                     "--platform", PLATFORM, "--directory", str(directories[0]), "--directory", str(directories[1]),
                     "--corrupt-rank", "1")
    # mpi_run returning at all means neither rank was left waiting; rank 0 reports rank 1's error
    assert report["ranks"] == 2 and report["error"] == "ChecksumError", report
    assert ".rank1.bin" in report["message"] and "(raised on rank 1)" in report["message"], report
    assert report["files_left"] == 0
