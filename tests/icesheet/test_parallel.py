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


def test_the_chord_with_a_schwarz_operator_converges_on_two_ranks(mpi_run):
    # On 2 ranks picard-chord's operator is additive Schwarz with a Cholesky factorisation per rank (not an exact
    # solve); its Anderson-mixed chord iteration still ends every warm solve at the Newton tolerance by itself, at the
    # root the tight reference (Picard + Newton to 1e-12) finds and that one rank finds with its exact factorisation.
    from support.parallel_check import chord_counts

    serial = chord_counts()
    parallel = mpi_run("support.parallel_check", "--chord")
    assert parallel["ranks"] == 2 and parallel["strategy"] == serial["strategy"] == "picard-chord"
    assert serial["exact"] and not parallel["exact"] and parallel["preconditioner"] == "asm"
    assert all(r <= 1e-10 for r in parallel["final_residual"]), parallel
    assert parallel["newton"] == parallel["picard"] == [0, 0, 0, 0], parallel
    assert parallel["difference_to_reference"] <= 1e-8 and serial["difference_to_reference"] <= 1e-8
    assert parallel["velocity_norm"] == pytest.approx(serial["velocity_norm"], rel=1e-8)
    # Counts per warm-started step on this coarse mesh (20 km, 5-year steps; 19-30 steps and 1-2 factorisations at
    # 4 to 1 km: docs/solvers.md): a Schwarz operator needs more chord steps than an exact one, few factorisations.
    assert all(steps <= 40 for steps in parallel["chord"]), parallel
    assert all(count <= 4 for count in parallel["factorisations"]), parallel
    # A chord that gives up (max_iterations = 3 steps) hands over to Newton's method, with the same Schwarz
    # preconditioner, which converges to the same root.
    fallback = parallel["fallback"]
    assert fallback["chord"] == 3 and fallback["newton"] >= 1 and fallback["final_residual"] <= 1e-10, fallback
    assert fallback["difference_to_reference"] <= 1e-8, fallback
