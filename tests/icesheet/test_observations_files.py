"""Observation files: a well-formed grid and CSV are read back exactly (values, fill values as gaps, units
converted, decreasing coordinates reordered), and every malformed file is refused with one line naming the file
and the variable.  Needs h5py, not Firedrake (the readers run before Firedrake is imported)."""
import h5py
import numpy as np
import pytest

from icesheet.constants import year
from icesheet.observations import GridNames, ObservationFileError, read_grid, read_observations, read_points
from icesheet.synthetic import FILL_VALUE, write_grid, write_points

X = np.array([0.0, 1000.0, 2000.0, 3000.0])
Y = np.array([0.0, 500.0, 1000.0])


def grid_values():
    vx = np.arange(12, dtype=float).reshape(3, 4) + 100.0
    vy = -np.arange(12, dtype=float).reshape(3, 4)
    error = np.full((3, 4), 2.0)
    vx[1, 2] = np.nan  # a gap
    return vx, vy, error


@pytest.fixture
def grid(tmp_path):
    vx, vy, error = grid_values()
    return write_grid(tmp_path / "velocity.nc", X, Y, vx, vy, error, error)


def test_grid_round_trip_with_gap(grid):
    data = read_grid(grid)
    vx, vy, error = grid_values()
    np.testing.assert_array_equal(data.x, X)
    np.testing.assert_array_equal(data.y, Y)
    np.testing.assert_allclose(data.vx, vx)  # float32 storage of these integers is exact
    expected_vy = vy.copy()
    expected_vy[1, 2] = np.nan  # a gap in one component is a gap in all
    np.testing.assert_allclose(data.vy, expected_vy)
    assert np.count_nonzero(~data.valid) == 1
    with h5py.File(grid) as h5:  # the fill value is what is stored, not NaN
        assert h5["vx"][1, 2] == np.float32(FILL_VALUE)
        assert h5["vx"].dims[0][0].name == "/y" and h5["vx"].dims[1][0].name == "/x"


def test_grid_units_packing_and_decreasing_coordinates(tmp_path):
    vx, vy, error = grid_values()
    path = tmp_path / "product.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = X / 1000.0
        h5["x"].attrs["units"] = "km"
        h5["y"] = Y[::-1]
        h5["y"].attrs["units"] = "metre"
        packed = np.round(np.nan_to_num(vx[::-1] / 365.25, nan=-1) / 0.001).astype(np.int32)
        h5["VX"] = packed
        h5["VX"].attrs.update({"units": "m d-1", "scale_factor": 0.001, "_FillValue": np.int32(-1000)})
        h5["VY"] = vy[::-1]
        h5["VY"].attrs["units"] = "m/yr"
        for name in ("EX", "EY"):
            h5[name] = error / year
            h5[name].attrs["units"] = "m s-1"
    data = read_grid(path, GridNames("x", "y", "VX", "VY", "EX", "EY"))
    np.testing.assert_allclose(data.x, X)
    np.testing.assert_array_equal(data.y, Y)
    np.testing.assert_allclose(data.vx, vx, rtol=1e-5, atol=365.25 * 0.0006)  # packing quantum 0.001 m/d
    expected_error = error.copy()
    expected_error[1, 2] = np.nan  # the gap of vx
    np.testing.assert_allclose(data.vx_error, expected_error)


def test_points_round_trip(tmp_path):
    path = write_points(tmp_path / "points.csv", [1.0, 2.5], [3.0, 4.0], [10.0, -1.5], [0.25, 7.0], 0.5)
    data = read_observations(path)
    np.testing.assert_array_equal(data.x, [1.0, 2.5])
    np.testing.assert_array_equal(data.vy, [0.25, 7.0])
    np.testing.assert_array_equal(data.sigma, [0.5, 0.5])


def _edit(path, name, action):
    with h5py.File(path, "a") as h5:
        action(h5, name)


def _delete(h5, name):
    del h5[name]


def _units(units):
    def action(h5, name):
        h5[name].attrs["units"] = units
    return action


def _no_units(h5, name):
    del h5[name].attrs["units"]


def _replace(values):
    def action(h5, name):
        attrs = dict(h5[name].attrs)
        attrs.pop("DIMENSION_LIST", None)
        attrs.pop("REFERENCE_LIST", None)
        attrs.pop("CLASS", None)
        attrs.pop("NAME", None)
        del h5[name]
        h5[name] = values
        h5[name].attrs.update(attrs)
    return action


@pytest.mark.parametrize("variable, action, expected", [
    ("vx", _delete, "missing"),
    ("vy_error", _delete, "missing"),
    ("x", _delete, "missing"),
    ("vx", _units("m"), "units 'm' are not a velocity"),
    ("vy", _no_units, "no 'units' attribute"),
    ("y", _units("m/yr"), "units 'm/yr' are not a length"),
    ("vx", _replace(np.zeros((4, 3))), "shape (4, 3); expected (y, x) = (3, 4)"),
    ("vx", _replace(np.full((3, 4), np.nan)), "every value is missing"),
    ("vy", _replace(np.full((3, 4), FILL_VALUE)), "every value is missing"),
    ("vx_error", _replace(np.zeros((3, 4))), "standard errors must be > 0"),
    ("x", _replace(np.array([0.0, 2.0, 1.0, 3.0])), "not strictly monotonic"),
    ("y", _replace(np.array([0.0, np.nan, 1.0])), "non-finite"),
])
def test_malformed_grid_is_named(grid, variable, action, expected):
    _edit(grid, variable, action)
    with pytest.raises(ObservationFileError) as err:
        read_grid(grid)
    message = str(err.value)
    assert f"observations {str(grid)!r}, variable {variable!r}" in message
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize("text, column, expected", [
    ("x,y,vx,vy\n1,2,3,4\n", "sigma", "missing column"),
    ("x,y,vx,vy,sigma\n", "x", "no data rows"),
    ("x,y,vx,vy,sigma\n1,2,3,four,1\n", "vy", "row 2: 'four' is not a number"),
    ("x,y,vx,vy,sigma\n1,2,3,4,1\n1,2,nan,4,1\n", "vx", "row 3: nan; values must be finite"),
    ("x,y,vx,vy,sigma\n1,2,3,4,0\n", "sigma", "standard errors must be > 0"),
    ("", "(header)", "empty"),
])
def test_malformed_points_are_named(tmp_path, text, column, expected):
    path = tmp_path / "points.csv"
    path.write_text(text)
    with pytest.raises(ObservationFileError) as err:
        read_points(path)
    assert f"observations {str(path)!r}, variable {column!r}" in str(err.value)
    assert expected in str(err.value)


def test_not_hdf5_and_unknown_suffix(tmp_path):
    bad = tmp_path / "velocity.nc"
    bad.write_text("not hdf5")
    with pytest.raises(ObservationFileError, match="not an HDF5/NetCDF4 file"):
        read_observations(bad)
    other = tmp_path / "velocity.tif"
    other.write_text("")
    with pytest.raises(ValueError, match="unknown kind of file"):
        read_observations(other)


def test_bilinear_reproduces_bilinear_fields_and_propagates_errors():
    from icesheet.observations import GridVelocities, bilinear

    x, y = np.array([0.0, 1.0, 3.0]), np.array([-1.0, 0.0, 2.0, 2.5])
    X, Y = np.meshgrid(x, y)
    field = 2.0 + 0.5 * X - 3.0 * Y + 0.25 * X * Y  # bilinear: reproduced exactly
    sigma = np.full(X.shape, 2.0)
    gap = field.copy()
    gap[3, 2] = np.nan  # the corner (x = 3, y = 2.5)
    data = GridVelocities("g", x, y, gap, field, sigma, sigma)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(0, 3, 50), rng.uniform(-1, 2.5, 50)])
    points = np.vstack([points, [[0.5, -0.5], [1.0, 0.0], [2.9, 2.4], [3.0, 2.0], [3.5, 0.0], [1.0, -2.0]]])
    vx, vy, sx, sy = bilinear(data, points)
    px, py = points.T
    np.testing.assert_allclose(vy[:-2], (2.0 + 0.5 * px - 3.0 * py + 0.25 * px * py)[:-2], rtol=1e-12)
    assert np.isnan(vx[-4]) and not np.isnan(vx[-3])  # the gap's corner has weight > 0 at (2.9, 2.4), 0 at (3, 2)
    assert np.all(np.isnan(vy[-2:])) and np.all(np.isnan(sx[-2:]))  # outside the grid
    # independent errors: a cell centre averages 4 values (sigma / 2), a grid point is one value (sigma)
    np.testing.assert_allclose(sy[-6], 2.0 / 2)
    np.testing.assert_allclose(sy[-5], 2.0)


# -- surface elevations -------------------------------------------------------------------------------------------
@pytest.fixture
def surface_grid(tmp_path):
    from icesheet.synthetic import write_surface_grid

    surface = np.arange(12, dtype=float).reshape(3, 4) * 10.0 + 500.0
    surface[0, 3] = np.nan  # a gap
    return write_surface_grid(tmp_path / "surface.nc", X, Y, surface, np.full((3, 4), 1.5))


def test_surface_grid_and_points_round_trip(surface_grid, tmp_path):
    from icesheet.observations import GridSurface, PointSurface
    from icesheet.synthetic import write_surface_points

    data = read_observations(surface_grid)
    assert isinstance(data, GridSurface) and data.quantity == "surface"
    expected = np.arange(12, dtype=float).reshape(3, 4) * 10.0 + 500.0
    expected[0, 3] = np.nan
    np.testing.assert_array_equal(data.surface, expected)
    assert np.isnan(data.surface_error[0, 3]) and np.count_nonzero(~data.valid) == 1
    path = write_surface_points(tmp_path / "s.csv", [1.0, 2.0], [3.0, 4.0], [700.0, 650.5], 0.8)
    points = read_observations(path)
    assert isinstance(points, PointSurface)
    np.testing.assert_array_equal(points.surface, [700.0, 650.5])
    np.testing.assert_array_equal(points.sigma, [0.8, 0.8])


def test_surface_in_km_is_converted(surface_grid):
    with h5py.File(surface_grid, "a") as h5:
        h5["surface"][...] = h5["surface"][...] / 1000.0
        h5["surface"].attrs["units"] = "km"
    data = read_grid(surface_grid)
    np.testing.assert_allclose(data.surface[1], [540.0, 550.0, 560.0, 570.0], rtol=1e-6)  # float32 storage


@pytest.mark.parametrize("variable, action, expected", [
    ("surface_error", _delete, "missing"),
    ("surface", _units("m/yr"), "units 'm/yr' are not a length"),
    ("surface_error", _no_units, "no 'units' attribute"),
    ("surface", _replace(np.full((3, 4), np.nan)), "every value is missing"),
    ("surface", _replace(np.zeros((3, 3))), "shape (3, 3); expected (y, x) = (3, 4)"),
    ("surface_error", _replace(-np.ones((3, 4))), "minimum -1 m; standard errors must be > 0"),
])
def test_malformed_surface_grid_is_named(surface_grid, variable, action, expected):
    _edit(surface_grid, variable, action)
    with pytest.raises(ObservationFileError) as err:
        read_grid(surface_grid)
    message = str(err.value)
    assert f"observations {str(surface_grid)!r}, variable {variable!r}" in message
    assert expected in message and "\n" not in message


def test_grid_without_velocity_or_surface_is_named(surface_grid):
    _edit(surface_grid, "surface", _delete)
    with pytest.raises(ObservationFileError) as err:
        read_grid(surface_grid)
    assert f"variable 'vx': missing (nor is there a surface elevation 'surface')" in str(err.value)


def test_surface_under_other_names(surface_grid):
    with h5py.File(surface_grid, "a") as h5:
        h5.move("surface", "usurf")
        h5.move("surface_error", "usurf_err")
    data = read_grid(surface_grid, GridNames.parse("x,y,vx,vy,vx_error,vy_error,usurf,usurf_err"))
    assert data.quantity == "surface" and data.surface[2, 0] == 580.0


@pytest.mark.parametrize("text, column, expected", [
    ("x,y,surface\n1,2,3\n", "sigma", "missing column"),
    ("x,y,surface,sigma\n1,2,high,1\n", "surface", "row 2: 'high' is not a number"),
    ("x,y,surface,sigma\n1,2,3,-1\n", "sigma", "minimum -1 m; standard errors must be > 0"),
])
def test_malformed_surface_points_are_named(tmp_path, text, column, expected):
    path = tmp_path / "surface.csv"
    path.write_text(text)
    with pytest.raises(ObservationFileError) as err:
        read_points(path)
    assert f"observations {str(path)!r}, variable {column!r}" in str(err.value)
    assert expected in str(err.value)
