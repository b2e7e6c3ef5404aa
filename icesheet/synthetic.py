r"""Synthetic observation files from a model run, for twin experiments that read what a user would read.

:func:`write_grid` writes a velocity product and :func:`write_surface_grid` a surface-elevation product as NetCDF4
files (HDF5 with dimension scales and CF attributes: the layout :func:`icesheet.observations.read_grid` reads;
netCDF-C reads it too, docs/inversion.md), :func:`write_points` and :func:`write_surface_points` CSVs of point
observations, :func:`sample_velocity` evaluates a model field at points.  :func:`synthetic_grid`,
:func:`synthetic_points` (velocities) and :func:`synthetic_surface_grid`, :func:`synthetic_surface_points`
(elevations) add what makes the data honest: independent Gaussian noise of standard deviation ``noise`` (m/yr, or m)
per component, and gaps, a fraction ``gap_fraction`` of the grid (or of the points) left out, in square patches for a
grid (as cloud or decorrelation gaps in a real product) and at random for points.  Grid values off the mesh are gaps
too.  The recorded error is ``noise``, the true standard deviation.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["write_grid", "write_surface_grid", "write_points", "write_surface_points", "sample_velocity", "grid_gaps",
           "synthetic_grid", "synthetic_points", "synthetic_surface_grid", "synthetic_surface_points", "FILL_VALUE"]

FILL_VALUE = -9999.0


def write_grid(path, x, y, vx, vy, vx_error, vy_error, fill_value: float = FILL_VALUE) -> Path:
    """A NetCDF4/HDF5 file with coordinates ``x`` (nx,), ``y`` (ny,) in m and ``vx, vy, vx_error, vy_error`` of shape
    (ny, nx) in m/yr; NaN values are written as ``fill_value``."""
    return _write_grid(path, x, y, {"vx": (vx, "m/yr", "velocity in x"), "vy": (vy, "m/yr", "velocity in y"),
                                    "vx_error": (vx_error, "m/yr", "standard error of vx"),
                                    "vy_error": (vy_error, "m/yr", "standard error of vy")}, fill_value,
                       "synthetic ice velocity (icesheet.synthetic)")


def write_surface_grid(path, x, y, surface, surface_error, fill_value: float = FILL_VALUE) -> Path:
    """A NetCDF4/HDF5 file with coordinates ``x`` (nx,), ``y`` (ny,) in m and ``surface, surface_error`` of shape
    (ny, nx) in m; NaN values are written as ``fill_value``."""
    return _write_grid(path, x, y, {"surface": (surface, "m", "surface elevation above sea level"),
                                    "surface_error": (surface_error, "m", "standard error of surface")},
                       fill_value, "synthetic surface elevation (icesheet.synthetic)")


def _write_grid(path, x, y, variables: dict, fill_value: float, title: str) -> Path:
    """``variables``: name -> (values (ny, nx), units, long name)."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5.attrs["Conventions"] = "CF-1.8"
        h5.attrs["title"] = title
        for name, values in (("x", x), ("y", y)):
            scale = h5.create_dataset(name, data=np.asarray(values, dtype=float))
            scale.make_scale(name)
            scale.attrs["units"] = "m"
            scale.attrs["standard_name"] = f"projection_{name}_coordinate"
        for name, (values, units, long_name) in variables.items():
            data = np.where(np.isfinite(values), values, fill_value)
            dataset = h5.create_dataset(name, data=data.astype(np.float32), fillvalue=np.float32(fill_value))
            dataset.attrs["_FillValue"] = np.array([fill_value], dtype=np.float32)
            dataset.attrs["units"] = units
            dataset.attrs["long_name"] = long_name
            dataset.dims[0].attach_scale(h5["y"])
            dataset.dims[1].attach_scale(h5["x"])
    return path


def write_points(path, x, y, vx, vy, sigma) -> Path:
    """A CSV with columns ``x, y`` (m), ``vx, vy, sigma`` (m/yr)."""
    return _write_csv(path, {"x": x, "y": y, "vx": vx, "vy": vy, "sigma": sigma})


def write_surface_points(path, x, y, surface, sigma) -> Path:
    """A CSV with columns ``x, y, surface, sigma`` (m)."""
    return _write_csv(path, {"x": x, "y": y, "surface": surface, "sigma": sigma})


def _write_csv(path, columns: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = np.shape(columns["x"])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(columns))
        for row in zip(*(np.broadcast_to(v, n) for v in columns.values())):
            writer.writerow([repr(float(v)) for v in row])
    return path


def sample_velocity(velocity, points) -> np.ndarray:
    """The Firedrake Function ``velocity`` (a vector, or a scalar such as a surface elevation) evaluated at
    ``points`` (n, 2) (on a VertexOnlyMesh), as an (n, 2) (or (n,)) array on every rank; NaN at points outside the
    mesh."""
    from firedrake import Function, FunctionSpace, VectorFunctionSpace, VertexOnlyMesh

    mesh = velocity.function_space().mesh()
    space = VectorFunctionSpace if velocity.ufl_shape else FunctionSpace
    vom = VertexOnlyMesh(mesh, np.asarray(points, dtype=float), missing_points_behaviour="ignore", redundant=True)
    on_points = Function(space(vom, "DG", 0)).interpolate(velocity)
    in_order = Function(space(vom.input_ordering, "DG", 0)).assign(np.nan)
    in_order.interpolate(on_points)  # points of a redundant VertexOnlyMesh are input on rank 0
    local = in_order.dat.data_ro.copy()  # collective access
    return mesh.comm.bcast(local if mesh.comm.rank == 0 else None)


def grid_gaps(shape, gap_fraction: float, rng, patch: int = 3) -> np.ndarray:
    """Boolean mask of ``shape``: True in square patches of ``patch`` cells placed at random until about
    ``gap_fraction`` of the grid is covered."""
    mask = np.zeros(shape, dtype=bool)
    if gap_fraction <= 0:
        return mask
    while mask.mean() < gap_fraction:
        i, j = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        mask[i:i + patch, j:j + patch] = True
    return mask


def synthetic_grid(path, velocity, x, y, noise: float, gap_fraction: float = 0.0, seed: int = 0) -> Path:
    """Write the grid product of ``velocity`` on the grid ``x`` (nx,), ``y`` (ny,) with noise and gaps."""
    rng = np.random.default_rng(seed)
    X, Y = np.meshgrid(x, y)
    values = sample_velocity(velocity, np.column_stack([X.ravel(), Y.ravel()])).reshape(*X.shape, 2)
    values = values + noise * rng.standard_normal(values.shape)
    values[grid_gaps(X.shape, gap_fraction, rng)] = np.nan
    error = np.where(np.isfinite(values[..., 0]), noise, np.nan)
    return write_grid(path, x, y, values[..., 0], values[..., 1], error, error)


def synthetic_points(path, velocity, points, noise: float, gap_fraction: float = 0.0, seed: int = 0) -> Path:
    """Write point observations of ``velocity`` at ``points`` (n, 2) with noise; a random ``gap_fraction`` of the
    points (and any outside the mesh) is left out."""
    rng = np.random.default_rng(seed)
    points = np.asarray(points, dtype=float)
    values = sample_velocity(velocity, points) + noise * rng.standard_normal((len(points), 2))
    keep = np.isfinite(values[:, 0]) & (rng.random(len(points)) >= gap_fraction)
    return write_points(path, points[keep, 0], points[keep, 1], values[keep, 0], values[keep, 1], noise)


def synthetic_surface_grid(path, surface, x, y, noise: float, gap_fraction: float = 0.0, seed: int = 0) -> Path:
    """Write the elevation product of the Function ``surface`` (m) on the grid ``x``, ``y`` with noise ``noise``
    (m) and gaps."""
    rng = np.random.default_rng(seed)
    X, Y = np.meshgrid(x, y)
    values = sample_velocity(surface, np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)
    values = values + noise * rng.standard_normal(values.shape)
    values[grid_gaps(X.shape, gap_fraction, rng)] = np.nan
    return write_surface_grid(path, x, y, values, np.where(np.isfinite(values), noise, np.nan))


def synthetic_surface_points(path, surface, points, noise: float, gap_fraction: float = 0.0, seed: int = 0) -> Path:
    """Write point elevations of the Function ``surface`` at ``points`` (n, 2) with noise ``noise`` (m); a random
    ``gap_fraction`` of the points (and any outside the mesh) is left out."""
    rng = np.random.default_rng(seed)
    points = np.asarray(points, dtype=float)
    values = sample_velocity(surface, points) + noise * rng.standard_normal(len(points))
    keep = np.isfinite(values) & (rng.random(len(points)) >= gap_fraction)
    return write_surface_points(path, points[keep, 0], points[keep, 1], values[keep], noise)
