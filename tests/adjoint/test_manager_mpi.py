"""The manager gives the same J, gradients and counts on 1 and 2 MPI ranks, with checkpoints on two disk levels."""
import pytest

pytestmark = [pytest.mark.firedrake, pytest.mark.mpi]

PLATFORM = "1:0:0,1:0.5:0.5,inf:1:1"  # RAM, a fast disk directory, a slow disk directory


def test_two_ranks_match_one_rank_through_hrevolve_on_disk(tmp_path, mpi_run):
    from checkpointing.adjoint.toy_gradient import toy_gradient_summary
    from checkpointing.platform import Platform

    serial_dirs = [tmp_path / "serial-ssd", tmp_path / "serial-pfs"]
    serial = toy_gradient_summary(8, 10, "hrevolve", Platform.from_spec(PLATFORM), serial_dirs)
    parallel_dirs = [tmp_path / "mpi-ssd", tmp_path / "mpi-pfs"]
    parallel = mpi_run("checkpointing.adjoint.toy_gradient", "--cells", "8", "--steps", "10", "--planner", "hrevolve",
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
