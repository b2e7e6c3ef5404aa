"""The Firedrake + pyadjoint stack works: a nonlinear solve's gradient passes a Taylor test, serial and on 2 ranks."""
import pytest

pytestmark = pytest.mark.firedrake


def test_taylor_order_serial():
    from experiments.smoke_taylor import taylor_order

    result = taylor_order(8)
    assert result["taylor_order"] > 1.95, result


@pytest.mark.mpi
def test_taylor_order_two_ranks_matches_serial(mpi_run):
    from experiments.smoke_taylor import taylor_order

    serial = taylor_order(8)
    parallel = mpi_run("experiments.smoke_taylor", "--cells", "8")
    assert parallel["ranks"] == 2
    assert parallel["taylor_order"] > 1.95, parallel
    assert parallel["J"] == pytest.approx(serial["J"], rel=1e-10)
