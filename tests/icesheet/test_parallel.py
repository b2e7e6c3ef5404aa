"""The model gives the same results on 1 and 2 MPI ranks (volumes, VAF, final norms; Picard iteration counts)."""
import pytest

pytestmark = [pytest.mark.firedrake, pytest.mark.mpi]


def test_two_ranks_match_serial(mpi_run):
    from support.parallel_check import fingerprint

    serial = fingerprint(steps=3)
    parallel = mpi_run("support.parallel_check", "--steps", "3")
    assert parallel["ranks"] == 2 and serial["ranks"] == 1
    # the default preconditioner: CHOLMOD on the whole Jacobian serially, a factorisation per rank's subdomain (ASM)
    assert serial["preconditioner"] == "cholesky" and parallel["preconditioner"] == "asm"
    for key in ("volume", "vaf"):
        assert parallel[key] == pytest.approx(serial[key], rel=1e-8)
    for key in ("thickness_norm", "velocity_norm"):
        assert parallel[key] == pytest.approx(serial[key], rel=1e-8)
    assert parallel["picard_iterations"] == serial["picard_iterations"]
