r"""Velocity observations from files, and their misfit on the model's mesh.

Two kinds of file, read and checked without Firedrake (so that a bad file is refused before any computation):

grid (NetCDF4 / HDF5, ``.nc``, ``.nc4``, ``.h5``, ``.hdf5``)
    as velocity products are distributed (CF conventions): 1-D coordinate variables ``x`` and ``y`` (m, or km),
    velocity components ``vx``, ``vy`` and their standard errors ``vx_error``, ``vy_error`` (m/yr, or m/d, m/s:
    converted) of shape ``(len(y), len(x))``; gaps are ``_FillValue`` / ``missing_value`` / NaN; CF packing
    (``scale_factor``, ``add_offset``) is undone.  Other variable names (e.g. MEaSUREs' ``VX, VY, ERRX, ERRY``) are
    given with :class:`GridNames`.  Read with h5py: a NetCDF4 file *is* an HDF5 file whose variables are datasets
    with attributes, so no NetCDF library is needed (docs/inversion.md says why not xarray).
points (CSV, ``.csv``)
    one observation per row, columns ``x, y`` (m), ``vx, vy`` (m/yr) and ``sigma`` (m/yr, the standard error of each
    component); a header row names the columns, lines starting with ``#`` are comments.

Every malformed file (missing variable or column, units that are not a velocity or a length, wrong shape,
non-increasing coordinates, all values missing, errors <= 0, coordinates outside the mesh) raises
:class:`ObservationFileError` whose one line names the file and the variable.

On the mesh (Firedrake, imported in the functions that need it) a set of observations becomes the term of the
misfit per observation (the reduced chi-squared of a least-squares fit),

.. math::
    E = \frac{1}{N}\sum_{k}\sum_{c\in\{x,y\}} \omega_k\,\frac{(u_c(x_k) - d_{kc})^2}{\sigma_{kc}^2},
    \qquad N = 2\sum_k\omega_k,

whose expected value is 1 when the model velocity is the truth and the errors are independent with the stated
:math:`\sigma` (Morozov's discrepancy principle then asks for :math:`E = 1`; Vogel 2002, Computational Methods
for Inverse Problems, sec. 7.3):

- a grid product is interpolated bilinearly onto the mesh's vertices (as icepack's ``interpolate``), its errors
  propagated (:func:`bilinear`); a vertex whose bilinear stencil touches a gap, or that lies outside the grid,
  gets weight 0.  The sum runs over the vertices with lumped-mass (vertex-quadrature) weights
  :math:`\omega_k = m_k / \bar m` (:math:`\bar m` their mean), i.e. the area-weighted mean of the residual, which
  keeps the expectation 1 for nodal errors (a consistent-mass integral of the interpolated noise would halve it);
- points are sampled, not interpolated: the model velocity is evaluated at each point on a VertexOnlyMesh, with
  :math:`\omega_k = 1`.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from icesheet.constants import year
from icesheet.errors import InputError

__all__ = ["ObservationFileError", "GridNames", "GridVelocities", "PointVelocities", "read_observations",
           "read_grid", "read_points", "GRID_SUFFIXES", "POINT_SUFFIXES", "VELOCITY_UNITS", "LENGTH_UNITS",
           "MeshObservations", "observations_on_mesh", "misfit_per_observation"]

GRID_SUFFIXES = (".nc", ".nc4", ".h5", ".hdf5")
POINT_SUFFIXES = (".csv",)
POINT_COLUMNS = ("x", "y", "vx", "vy", "sigma")

#: accepted spellings of velocity units -> factor to m/yr
VELOCITY_UNITS = {**{u: 1.0 for u in ("m/yr", "m/a", "m yr-1", "m a-1", "m year-1", "m/year", "m yr^-1", "m a^-1",
                                      "meter/year", "meters/year", "metre/year", "metres/year", "m y-1")},
                  **{u: 365.25 for u in ("m/d", "m d-1", "m day-1", "m/day")},
                  **{u: year for u in ("m/s", "m s-1", "m s^-1")}}
#: accepted spellings of length units -> factor to m
LENGTH_UNITS = {**{u: 1.0 for u in ("m", "meter", "meters", "metre", "metres")},
                **{u: 1000.0 for u in ("km", "kilometer", "kilometers", "kilometre", "kilometres")}}


class ObservationFileError(InputError):
    """A malformed observation file; the message names the file and the variable (or column)."""

    def __init__(self, path, variable: str, problem: str):
        super().__init__(f"observations {str(path)!r}, variable {variable!r}: {problem}")
        self.path, self.variable = str(path), variable


@dataclass(frozen=True)
class GridNames:
    """Names of the variables in a grid file (defaults: ITS_LIVE-like; MEaSUREs: ``GridNames("x", "y", "VX", "VY",
    "ERRX", "ERRY")``)."""

    x: str = "x"
    y: str = "y"
    vx: str = "vx"
    vy: str = "vy"
    vx_error: str = "vx_error"
    vy_error: str = "vy_error"

    @classmethod
    def parse(cls, text: str) -> "GridNames":
        """From ``"x,y,vx,vy,vx_error,vy_error"`` (six comma-separated names)."""
        names = [n.strip() for n in text.split(",")]
        if len(names) != 6 or not all(names):
            raise InputError(f"grid_names = {text!r}: give six comma-separated names x,y,vx,vy,vx_error,vy_error")
        return cls(*names)


@dataclass(frozen=True)
class GridVelocities:
    """A velocity product on a regular grid: ``x`` (nx,), ``y`` (ny,) increasing (m); ``vx, vy, vx_error,
    vy_error`` of shape (ny, nx) in m/yr, NaN in gaps (where any of the four is missing)."""

    path: str
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vx_error: np.ndarray
    vy_error: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.vx)


@dataclass(frozen=True)
class PointVelocities:
    """Scattered velocity observations: ``x, y`` (m), ``vx, vy`` and ``sigma`` (m/yr), one entry per point."""

    path: str
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    sigma: np.ndarray


def read_observations(path, grid_names: GridNames = GridNames()):
    """:func:`read_grid` or :func:`read_points` by the file's suffix."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"observations = {str(path)!r}: no such file")
    suffix = path.suffix.lower()
    if suffix in GRID_SUFFIXES:
        return read_grid(path, grid_names)
    if suffix in POINT_SUFFIXES:
        return read_points(path)
    raise InputError(f"observations = {str(path)!r}: unknown kind of file; suffixes: grids "
                     f"{', '.join(GRID_SUFFIXES)}, points {', '.join(POINT_SUFFIXES)}")


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return _text(value.reshape(-1)[0]) if value.size else ""
    return str(value)


def _units_factor(path, name: str, dataset, table: dict, what: str) -> float:
    if "units" not in dataset.attrs:
        raise ObservationFileError(path, name, f"no 'units' attribute; it must be a {what}: one of "
                                   f"{', '.join(sorted(table))}")
    units = _text(dataset.attrs["units"]).strip()
    normalised = " ".join(units.lower().replace("**", "^").split())
    if normalised not in table:
        raise ObservationFileError(path, name, f"units {units!r} are not a {what}; allowed: "
                                   f"{', '.join(sorted(table))}")
    return table[normalised]


def _read_variable(path, h5, name: str, table: dict, what: str) -> np.ndarray:
    """The variable as float64 with fill and missing values as NaN, unpacked (CF) and converted by its units."""
    if name not in h5 or not hasattr(h5[name], "shape"):
        raise ObservationFileError(path, name, f"missing; the file holds {', '.join(sorted(h5.keys())) or 'nothing'}")
    dataset = h5[name]
    factor = _units_factor(path, name, dataset, table, what)
    raw = np.asarray(dataset[()])
    if not np.issubdtype(raw.dtype, np.number):
        raise ObservationFileError(path, name, f"holds {raw.dtype} values, not numbers")
    values = raw.astype(float)
    for attribute in ("_FillValue", "missing_value"):
        if attribute in dataset.attrs:
            for fill in np.atleast_1d(dataset.attrs[attribute]).astype(raw.dtype):
                values[raw == fill] = np.nan
    values = values * float(np.atleast_1d(dataset.attrs.get("scale_factor", 1.0))[0]) \
        + float(np.atleast_1d(dataset.attrs.get("add_offset", 0.0))[0])
    return values * factor


def _coordinate(path, h5, name: str) -> tuple[np.ndarray, bool]:
    """A 1-D strictly monotonic coordinate in m, and whether it decreases."""
    values = _read_variable(path, h5, name, LENGTH_UNITS, "length")
    if values.ndim != 1 or values.size < 2:
        raise ObservationFileError(path, name, f"shape {values.shape}: a coordinate must be 1-D with >= 2 values")
    if not np.all(np.isfinite(values)):
        raise ObservationFileError(path, name, "has missing or non-finite values; coordinates must all be finite")
    steps = np.diff(values)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ObservationFileError(path, name, "is not strictly monotonic; a regular grid needs increasing "
                                   "(or decreasing) coordinates")
    return values, bool(steps[0] < 0)


def read_grid(path, names: GridNames = GridNames()) -> GridVelocities:
    """Read and check a gridded velocity product (module docstring); rows are reordered so that x, y increase."""
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise ObservationFileError(path, "(file)", f"not an HDF5/NetCDF4 file ({err})") from None
    with h5:
        x, flip_x = _coordinate(path, h5, names.x)
        y, flip_y = _coordinate(path, h5, names.y)
        fields = {}
        for field in ("vx", "vy", "vx_error", "vy_error"):
            name = getattr(names, field)
            values = _read_variable(path, h5, name, VELOCITY_UNITS, "velocity")
            if values.shape != (y.size, x.size):
                raise ObservationFileError(path, name, f"shape {values.shape}; expected ({names.y}, {names.x}) = "
                                           f"({y.size}, {x.size})")
            if not np.any(np.isfinite(values)):
                raise ObservationFileError(path, name, "every value is missing (fill value or NaN)")
            fields[field] = values
    for field in ("vx_error", "vy_error"):
        errors = fields[field]
        if np.any(errors[np.isfinite(errors)] <= 0):
            raise ObservationFileError(path, getattr(names, field), f"minimum {np.nanmin(errors):g} m/yr; "
                                       "standard errors must be > 0")
    gaps = ~np.all([np.isfinite(v) for v in fields.values()], axis=0)
    if np.all(gaps):
        raise ObservationFileError(path, names.vx, "no grid cell has all of vx, vy and their errors")
    for values in fields.values():
        values[gaps] = np.nan
    if flip_x:
        x, fields = x[::-1], {k: v[:, ::-1] for k, v in fields.items()}
    if flip_y:
        y, fields = y[::-1], {k: v[::-1, :] for k, v in fields.items()}
    return GridVelocities(str(path), x, y, **{k: np.ascontiguousarray(v) for k, v in fields.items()})


def read_points(path) -> PointVelocities:
    """Read and check a CSV of point observations (module docstring)."""
    with open(path, newline="") as f:
        lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ObservationFileError(path, "(header)", f"empty; the header must name the columns "
                                   f"{', '.join(POINT_COLUMNS)}")
    reader = csv.DictReader(lines, skipinitialspace=True)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    for column in POINT_COLUMNS:
        if column not in header:
            raise ObservationFileError(path, column, f"missing column; the header has {', '.join(header)}")
    rows = list(reader)
    if not rows:
        raise ObservationFileError(path, "x", "no data rows")
    columns = {c: np.empty(len(rows)) for c in POINT_COLUMNS}
    for line, row in enumerate(rows, start=2):
        for column in POINT_COLUMNS:
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                raise ObservationFileError(path, column, f"row {line}: {row[column]!r} is not a number") from None
            if not math.isfinite(value):
                raise ObservationFileError(path, column, f"row {line}: {value}; values must be finite")
            columns[column][line - 2] = value
    if np.any(columns["sigma"] <= 0):
        raise ObservationFileError(path, "sigma", f"minimum {columns['sigma'].min():g} m/yr; standard errors must "
                                   "be > 0")
    return PointVelocities(str(path), **columns)


# -- on the mesh (Firedrake) ------------------------------------------------------------------------------------------
class MeshObservations:
    """One observation file on a model's mesh: :meth:`chi_squared` assembles (taped when pyadjoint annotates)
    :math:`\\sum_k \\omega_k \\sum_c (u_c(x_k) - d_{kc})^2 / \\sigma_{kc}^2` for the model velocity ``velocity``,
    ``count`` is :math:`\\sum_k \\omega_k` (locations), ``observed`` the data as a Function (for output).  Build with
    :func:`observations_on_mesh`; the forms are built once and reassembled at every call."""

    def __init__(self, path: str, kind: str, count: float, observed, form, sample=None):
        self.path, self.kind, self.count, self.observed = path, kind, count, observed
        self._form = form
        self._sample = sample  # (Function on the points, the model velocity) for point data

    def chi_squared(self):
        from firedrake import assemble

        if self._sample is not None:
            sampled, velocity = self._sample
            sampled.interpolate(velocity)
        return assemble(self._form)


def observations_on_mesh(data, velocity) -> MeshObservations:
    """``data`` (:class:`GridVelocities` or :class:`PointVelocities`) on the mesh of ``velocity`` (the model's
    velocity Function, which the misfit will read); raises ObservationFileError if no datum falls on the mesh (grid)
    or a point lies outside it (points)."""
    if isinstance(data, GridVelocities):
        return _grid_on_mesh(data, velocity)
    if isinstance(data, PointVelocities):
        return _points_on_mesh(data, velocity)
    raise TypeError(f"data: {type(data).__name__}; expected GridVelocities or PointVelocities")


def vertex_measure(mesh):
    r"""The measure :math:`dx` with the vertex quadrature rule (weight :math:`|T|/3` at each vertex of a triangle):
    :math:`\int f\,dx = \sum_k m_k f(x_k)` for P1 functions, :math:`m_k` the lumped mass.  It is FInAT's
    mass-lumping rule of degree 1 (Chin-Joe-Kong, Mulder & van Veldhuizen 1999, J. Eng. Math. 35)."""
    from firedrake import dx

    return dx(domain=mesh, scheme="KMV", degree=1)


def bilinear(data: GridVelocities, points) -> tuple[np.ndarray, ...]:
    r"""Bilinear interpolation of the grid ``data`` at ``points`` (n, 2): ``(vx, vy, sigma_x, sigma_y)``, each (n,),
    NaN where a grid value with a non-zero weight is a gap or the point is outside the grid.  The errors are
    propagated for independent grid errors, :math:`\sigma^2 = \sum_j w_j^2 \sigma_j^2` with :math:`w_j` the four
    bilinear weights, so that the interpolated data keep a misfit of 1 per observation at the truth whatever the
    grid's spacing and offset."""
    px, py = np.asarray(points, dtype=float).T
    i = np.clip(np.searchsorted(data.x, px, side="right") - 1, 0, data.x.size - 2)
    j = np.clip(np.searchsorted(data.y, py, side="right") - 1, 0, data.y.size - 2)
    tx = (px - data.x[i]) / (data.x[i + 1] - data.x[i])
    ty = (py - data.y[j]) / (data.y[j + 1] - data.y[j])
    outside = (tx < -1e-9) | (tx > 1 + 1e-9) | (ty < -1e-9) | (ty > 1 + 1e-9)
    tx, ty = np.clip(tx, 0, 1), np.clip(ty, 0, 1)
    corners = [(j, i, (1 - tx) * (1 - ty)), (j, i + 1, tx * (1 - ty)), (j + 1, i, (1 - tx) * ty),
               (j + 1, i + 1, tx * ty)]

    def combine(values, power):
        total = np.zeros(px.shape)
        for row, column, weight in corners:
            v = values[row, column]
            total += np.where(weight > 0, weight**power * np.where(np.isfinite(v), v, 0.0), 0.0)
            outside_or_gap = (weight > 0) & ~np.isfinite(v)
            total[outside_or_gap] = np.nan
        return total

    result = (combine(data.vx, 1), combine(data.vy, 1), np.sqrt(combine(data.vx_error**2, 2)),
              np.sqrt(combine(data.vy_error**2, 2)))
    for values in result:
        values[outside] = np.nan
    return result


def _grid_on_mesh(data: GridVelocities, velocity) -> MeshObservations:
    import firedrake as fd

    mesh = velocity.function_space().mesh()
    Q = fd.FunctionSpace(mesh, "CG", 1)
    V = fd.VectorFunctionSpace(mesh, "CG", 1)
    xy = fd.Function(V).interpolate(fd.SpatialCoordinate(mesh)).dat.data_ro
    vx, vy, sx, sy = bilinear(data, xy)
    valid = np.isfinite(vx) & np.isfinite(vy) & np.isfinite(sx) & np.isfinite(sy)
    dx_vertex = vertex_measure(mesh)
    lumped = fd.assemble(fd.TestFunction(Q) * dx_vertex).dat.data_ro
    comm = mesh.comm
    count = int(comm.allreduce(int(np.count_nonzero(valid))))
    if count == 0:
        low = [comm.allreduce(float(xy[:, k].min()), op=_mpi_min()) for k in range(2)]
        high = [-comm.allreduce(-float(xy[:, k].max()), op=_mpi_min()) for k in range(2)]
        raise ObservationFileError(data.path, "x, y", f"the grid's data, x in [{data.x[0]:g}, {data.x[-1]:g}] m, "
                                   f"y in [{data.y[0]:g}, {data.y[-1]:g}] m, reach no vertex of the mesh "
                                   f"(x in [{low[0]:g}, {high[0]:g}], y in [{low[1]:g}, {high[1]:g}])")
    mean_mass = comm.allreduce(float(np.sum(lumped[valid]))) / count
    observed = fd.Function(V, name="observed_velocity")
    observed.dat.data_wo[:, 0] = np.where(valid, vx, 0.0)
    observed.dat.data_wo[:, 1] = np.where(valid, vy, 0.0)
    weight = fd.Function(V, name="observation_weight")  # omega_k / sigma_kc^2, zero in gaps
    weight.dat.data_wo[:, 0] = np.where(valid, 1 / np.where(valid, sx, 1.0) ** 2, 0.0) / mean_mass
    weight.dat.data_wo[:, 1] = np.where(valid, 1 / np.where(valid, sy, 1.0) ** 2, 0.0) / mean_mass
    form = sum(weight[c] * (velocity[c] - observed[c]) ** 2 for c in range(2)) * dx_vertex
    return MeshObservations(data.path, "grid", count, observed, form)


def _points_on_mesh(data: PointVelocities, velocity) -> MeshObservations:
    import firedrake as fd

    mesh = velocity.function_space().mesh()
    points = np.column_stack([data.x, data.y])
    vom = fd.VertexOnlyMesh(mesh, points, redundant=True, missing_points_behaviour="ignore")
    found = int(mesh.comm.allreduce(vom.cell_set.size))
    if found < len(points):
        inside = fd.Function(fd.FunctionSpace(vom.input_ordering, "DG", 0)).assign(np.nan)
        inside.interpolate(fd.Function(fd.FunctionSpace(vom, "DG", 0)).assign(1.0))
        local = inside.dat.data_ro.copy()  # collective access; the points are on rank 0
        flags = mesh.comm.bcast(local if mesh.comm.rank == 0 else None)
        first = int(np.flatnonzero(~(flags == 1.0))[0]) if np.any(flags != 1.0) else 0
        raise ObservationFileError(data.path, "x, y", f"{len(points) - found} of {len(points)} points lie outside "
                                   f"the mesh, the first in data row {first + 1} at ({points[first, 0]:g}, "
                                   f"{points[first, 1]:g}) m")
    W = fd.VectorFunctionSpace(vom, "DG", 0)
    W_input = fd.VectorFunctionSpace(vom.input_ordering, "DG", 0)

    def on_points(columns, name):
        values = fd.Function(W_input)
        local = values.dat.data_wo  # collective: every rank takes the view; the points are on rank 0
        local[...] = np.column_stack(columns)[:len(local)]
        return fd.Function(W, name=name).interpolate(values)

    observed = on_points((data.vx, data.vy), "observed_velocity")
    weight = on_points((1 / data.sigma**2, 1 / data.sigma**2), "observation_weight")
    sampled = fd.Function(W, name="model_velocity_at_points")
    form = sum(weight[c] * (sampled[c] - observed[c]) ** 2 for c in range(2)) * fd.dx(domain=vom)
    return MeshObservations(data.path, "points", len(points), observed, form, sample=(sampled, velocity))


def misfit_per_observation(observations):
    """:math:`E = \\sum_s \\chi^2_s / (2 \\sum_s n_s)` over the sets ``observations`` (MeshObservations): the
    misfit per observed component (an AdjFloat when taped)."""
    total = sum(o.count for o in observations)
    value = None
    for o in observations:
        term = o.chi_squared()
        value = term if value is None else value + term
    return value / (2 * total)


def _mpi_min():
    from mpi4py import MPI

    return MPI.MIN
