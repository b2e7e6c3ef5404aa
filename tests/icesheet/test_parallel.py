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
    # One rank in a subprocess too: the factorisation count turns PETSc's logging on (PETSc.Log.begin), which would
    # stay on for the rest of the pytest session.
    serial = mpi_run("support.parallel_check", "--chord", ranks=1)
    parallel = mpi_run("support.parallel_check", "--chord")
    assert parallel["ranks"] == 2 and parallel["strategy"] == serial["strategy"] == "picard-chord"
    assert serial["exact"] and not parallel["exact"] and parallel["preconditioner"] == "asm"
    assert all(r <= 1e-10 for r in parallel["final_residual"]), parallel
    assert parallel["newton"] == parallel["picard"] == [0, 0, 0, 0], parallel
    assert parallel["difference_to_reference"] <= 1e-8 and serial["difference_to_reference"] <= 1e-8
    assert parallel["velocity_norm"] == pytest.approx(serial["velocity_norm"], rel=1e-8)
    # Counts per warm-started step on this coarse mesh (20 km, 5-year steps; 19-30 steps and 1-2 factorisations at
    # 4 to 1 km: docs/solvers.md): a Schwarz operator needs more chord steps than an exact one, few factorisations.
    # Measured here: 18-31 steps and 0-4 factorisations (rank 0's Cholesky events) per step; bounds with a margin.
    assert all(steps <= 40 for steps in parallel["chord"]), parallel
    assert all(count <= 6 for count in parallel["factorisations"]), parallel
    # A chord that gives up (max_iterations = 3 steps) hands over to Newton's method, with the same Schwarz
    # preconditioner, which converges to the same root.
    fallback = parallel["fallback"]
    assert fallback["chord"] == 3 and fallback["newton"] >= 1 and fallback["final_residual"] <= 1e-10, fallback
    assert fallback["difference_to_reference"] <= 1e-8, fallback


def test_the_schwarz_chord_keeps_a_rising_first_step_and_hands_over_above_its_start(mpi_run):
    # Cold solves on 2 ranks whose chord starts far from the root (the Picard phase ended at 0.12 or 0.3), to reach
    # the Schwarz rules of VelocitySolver._chord_solve.  The root: the tight reference (Picard + Newton to 1e-12).
    result = mpi_run("support.parallel_check", "--schwarz-branches")
    kept, handover = result["kept_rise"], result["handover"]
    assert result["ranks"] == 2 and not kept["exact"] and not handover["exact"], result
    # The first step with a rebuilt operator is kept although it increases the residual (a rise in the accepted
    # residuals, which any other step would have undone), and the chord still converges by itself.
    history = kept["chord_residuals"]
    rises = [k for k in range(len(history) - 1) if history[k + 1] > history[k]]
    assert rises and all(history[k + 1] <= history[0] for k in rises), kept
    assert kept["factorisations"] >= 2 and kept["newton"] == 0 and kept["final_residual"] <= 1e-10, kept
    assert kept["difference_to_reference"] <= 1e-8, kept
    # The first step with a fresh operator goes above the chord's start: the chord stops after that one step and one
    # factorisation (neither max_iterations nor newton_max_iterations is the cause) and Newton's method takes over,
    # to the same root.
    assert handover["chord"] == 1 and handover["factorisations"] == 1 and handover["newton"] >= 1, handover
    assert handover["final_residual"] <= 1e-10 and handover["difference_to_reference"] <= 1e-8, handover
