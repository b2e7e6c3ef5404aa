"""A grid finer than the mesh is sampled at its points (icesheet.observations), not interpolated at the vertices.

Oracles: closed forms.  A linear velocity (exactly a P1 field) observed on a grid four times finer than the mesh
has misfit 0, and with a known offset the offset's chi-squared; a fine checkerboard of amplitude a around c is fitted
best (over constant model fields) by its mean, c + a * mean((-1)^(i+j)), computed with numpy, while the
vertices' bilinear interpolation sees only the checkerboard's values at the vertices (all +a here: aliasing).
"""
import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

LENGTH, WIDTH, CELLS = 80e3, 20e3, (8, 2)  # 10 km cells
SPACING = 2500.0


def _setup():
    import firedrake as fd

    mesh = fd.RectangleMesh(*CELLS, LENGTH, WIDTH)
    velocity = fd.Function(fd.VectorFunctionSpace(mesh, "CG", 1), name="velocity")
    x, y = np.arange(0.0, LENGTH + 1, SPACING), np.arange(0.0, WIDTH + 1, SPACING)
    return mesh, velocity, x, y


def _grid(tmp_path, x, y, vx, vy, sigma=1.0):
    from icesheet.observations import read_observations
    from icesheet.synthetic import write_grid

    error = np.full(vx.shape, sigma)
    return read_observations(write_grid(tmp_path / "fine.nc", x, y, vx, vy, error, error))


def linear(x, y):
    return 100.0 + 2e-3 * x - 1e-3 * y, -5.0 + 1e-4 * x + 3e-4 * y


def test_linear_field_on_a_fine_grid_is_reproduced(tmp_path):
    import firedrake as fd
    from pyadjoint import stop_annotating

    from icesheet.observations import misfit_per_observation, observations_on_mesh

    mesh, velocity, x, y = _setup()
    X, Y = np.meshgrid(x, y)
    velocity.interpolate(fd.as_vector(linear(*fd.SpatialCoordinate(mesh))))
    offset = np.array([0.25, -0.125])  # m/yr, errors 0.5; the data are exact in the file's float32
    vx, vy = linear(X, Y)
    data = _grid(tmp_path, x, y, vx + offset[0], vy + offset[1], sigma=0.5)
    observations = observations_on_mesh(data, velocity)
    assert observations.kind == "grid (sampled)" and observations.count == X.size  # every grid value is used
    with stop_annotating():
        assert float(misfit_per_observation([observations])) == pytest.approx(
            ((0.25 / 0.5) ** 2 + (0.125 / 0.5) ** 2) / 2, rel=1e-9)
    velocity.dat.data_wo[:, 0] += offset[0]
    velocity.dat.data_wo[:, 1] += offset[1]
    with stop_annotating():
        assert float(misfit_per_observation([observations])) < 1e-18  # the linear field is reproduced exactly


def _best_constant(observations, velocity, centre, a):
    """The constant x velocity that minimises the (quadratic) misfit, from three evaluations."""
    from pyadjoint import stop_annotating

    from icesheet.observations import misfit_per_observation

    values = []
    for shift in (-a, 0.0, a):
        velocity.dat.data_wo[:, 0] = centre + shift
        velocity.dat.data_wo[:, 1] = 0.0
        with stop_annotating():
            values.append(float(misfit_per_observation([observations])))
    lower, middle, upper = values
    return centre + a * (lower - upper) / (2 * (lower - 2 * middle + upper))


def test_fine_checkerboard_averages_to_its_mean(tmp_path):
    from icesheet.observations import observations_on_mesh

    mesh, velocity, x, y = _setup()
    c, a = 200.0, 8.0
    i, j = np.meshgrid(np.arange(x.size), np.arange(y.size))
    signs = (-1.0) ** (i + j)
    data = _grid(tmp_path, x, y, c + a * signs, np.zeros(signs.shape))
    sampled = observations_on_mesh(data, velocity)
    at_vertices = observations_on_mesh(data, velocity, grid_sampling="vertices")
    assert sampled.kind == "grid (sampled)" and at_vertices.kind == "grid"
    assert _best_constant(sampled, velocity, c, a) == pytest.approx(c + a * signs.mean(), abs=1e-9 * c)
    assert abs(signs.mean()) < 0.02  # the mean is nearly c ...
    assert _best_constant(at_vertices, velocity, c, a) == pytest.approx(c + a, abs=1e-9 * c)  # ... aliased to c + a
