r"""Observations from files (velocities and surface elevations), and their misfit on the model's mesh.

Two kinds of file, read and checked without Firedrake (so that a bad file is refused before any computation):

grid (NetCDF4 / HDF5, ``.nc``, ``.nc4``, ``.h5``, ``.hdf5``)
    as velocity and elevation products are distributed (CF conventions): 1-D coordinate variables ``x`` and ``y`` (m,
    or km) and, of shape ``(len(y), len(x))``, either velocity components ``vx``, ``vy`` and their standard errors
    ``vx_error``, ``vy_error`` (m/yr, or m/d, m/s: converted), or a surface elevation ``surface`` and its standard
    error ``surface_error`` (m, or km); a file with velocities is read as a velocity file.  Gaps are ``_FillValue``
    / ``missing_value`` / NaN; CF packing (``scale_factor``, ``add_offset``) is undone.  Other variable names (e.g.
    MEaSUREs' ``VX, VY, ERRX, ERRY``) are given with :class:`GridNames`.  Read with h5py: a NetCDF4 file *is* an HDF5
    file whose variables are datasets with attributes, so no NetCDF library is needed (docs/inversion.md says why not
    xarray).
points (CSV, ``.csv``)
    one observation per row, columns ``x, y`` (m) and either ``vx, vy`` (m/yr) with ``sigma`` (m/yr, the standard
    error of each component), or ``surface`` (m) with ``sigma`` (m); a header row names the columns, lines starting
    with ``#`` are comments.

Every malformed file (missing variable or column, units that are not a velocity or a length, wrong shape,
non-increasing coordinates, all values missing, errors <= 0, coordinates outside the mesh) raises
:class:`ObservationFileError` whose one line names the file and the variable.

On the mesh (Firedrake, imported in the functions that need it) a set of observations becomes the term of the
misfit per observation (the reduced chi-squared of a least-squares fit),

.. math::
    E = \frac{1}{N}\sum_{k}\sum_{c} \omega_k\,\frac{(f_c(x_k) - d_{kc})^2}{\sigma_{kc}^2},
    \qquad N = \sum_k\sum_c\omega_k,

over the observed components :math:`c` (:math:`u_x, u_y` of the velocity, or the surface elevation :math:`s(h)` of
icesheet.physics.surface), whose expected value is 1 when the model is the truth and the errors are independent with
the stated :math:`\sigma` (Morozov's discrepancy principle then asks for :math:`E = 1`; Vogel 2002, Computational
Methods for Inverse Problems, sec. 7.3):

- a grid product as coarse as the mesh or coarser is interpolated bilinearly onto the mesh's vertices (as icepack's
  ``interpolate``), its errors propagated (:func:`bilinear`); a vertex whose bilinear stencil touches a gap, or that
  lies outside the grid, gets weight 0.  The sum runs over the vertices with lumped-mass (vertex-quadrature) weights
  :math:`\omega_k = m_k / \bar m` (:math:`\bar m` their mean), i.e. the area-weighted mean of the residual, which
  keeps the expectation 1 for nodal errors (a consistent-mass integral of the interpolated noise would halve it);
- a grid finer than the mesh (spacing below :data:`SAMPLE_BELOW` times the mesh's length per vertex,
  :math:`\sqrt{|\Omega| / n_\text{vertices}}`) would lose most of its values to the vertices' bilinear stencils, so
  each of its values is an observation: the model is sampled at every grid point inside the mesh, as points are,
  with :math:`\omega_k = 1`.  For a P1 model field this misfit is, up to a constant, that of the least-squares
  P1 fit of the grid values (the grid averaged onto the mesh: a constant or linear field is reproduced, a fine
  checkerboard becomes its mean), without solving for that fit;
- points are sampled, not interpolated: the model field is evaluated at each point on a VertexOnlyMesh, with
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

__all__ = ["ObservationFileError", "GridNames", "GridVelocities", "PointVelocities", "GridSurface", "PointSurface",
           "read_observations", "read_grid", "read_points", "GRID_SUFFIXES", "POINT_SUFFIXES", "VELOCITY_UNITS",
           "LENGTH_UNITS", "SAMPLE_BELOW", "MeshObservations", "observations_on_mesh", "misfit_per_observation"]

GRID_SUFFIXES = (".nc", ".nc4", ".h5", ".hdf5")
POINT_SUFFIXES = (".csv",)
POINT_COLUMNS = ("x", "y", "vx", "vy", "sigma")
SURFACE_COLUMNS = ("x", "y", "surface", "sigma")
#: a grid whose spacing is below this fraction of the mesh's length per vertex is sampled at its points
SAMPLE_BELOW = 0.75

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
    "ERRX", "ERRY")``); ``surface``, ``surface_error`` those of a surface-elevation file."""

    x: str = "x"
    y: str = "y"
    vx: str = "vx"
    vy: str = "vy"
    vx_error: str = "vx_error"
    vy_error: str = "vy_error"
    surface: str = "surface"
    surface_error: str = "surface_error"

    @classmethod
    def parse(cls, text: str) -> "GridNames":
        """From ``"x,y,vx,vy,vx_error,vy_error"`` or ``"x,y,vx,vy,vx_error,vy_error,surface,surface_error"`` (six
        or eight comma-separated names)."""
        names = [n.strip() for n in text.split(",")]
        if len(names) not in (6, 8) or not all(names):
            raise InputError(f"grid_names = {text!r}: give six comma-separated names x,y,vx,vy,vx_error,vy_error, "
                             "or eight with surface,surface_error")
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

    quantity = "velocity"

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.vx)

    def components(self) -> tuple[list, list]:
        """The observed components and their standard errors, each a list of arrays."""
        return [self.vx, self.vy], [self.vx_error, self.vy_error]


@dataclass(frozen=True)
class PointVelocities:
    """Scattered velocity observations: ``x, y`` (m), ``vx, vy`` and ``sigma`` (m/yr), one entry per point."""

    path: str
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    sigma: np.ndarray
    quantity = "velocity"

    def components(self) -> tuple[list, list]:
        return [self.vx, self.vy], [self.sigma, self.sigma]


@dataclass(frozen=True)
class GridSurface:
    """A surface-elevation product on a regular grid: ``x`` (nx,), ``y`` (ny,) increasing (m); ``surface`` and its
    standard error ``surface_error`` of shape (ny, nx) in m, NaN in gaps."""

    path: str
    x: np.ndarray
    y: np.ndarray
    surface: np.ndarray
    surface_error: np.ndarray
    quantity = "surface"

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.surface)

    def components(self) -> tuple[list, list]:
        return [self.surface], [self.surface_error]


@dataclass(frozen=True)
class PointSurface:
    """Scattered surface elevations: ``x, y`` (m), ``surface`` and its standard error ``sigma`` (m)."""

    path: str
    x: np.ndarray
    y: np.ndarray
    surface: np.ndarray
    sigma: np.ndarray
    quantity = "surface"

    def components(self) -> tuple[list, list]:
        return [self.surface], [self.sigma]


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


def read_grid(path, names: GridNames = GridNames()) -> GridVelocities | GridSurface:
    """Read and check a gridded velocity or surface-elevation product (module docstring): a velocity product if the
    file holds ``names.vx``, else a surface product if it holds ``names.surface``; rows are reordered so that x, y
    increase."""
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise ObservationFileError(path, "(file)", f"not an HDF5/NetCDF4 file ({err})") from None
    with h5:
        x, flip_x = _coordinate(path, h5, names.x)
        y, flip_y = _coordinate(path, h5, names.y)
        if names.vx in h5 or names.surface not in h5:
            kind, observed, units, what = GridVelocities, ("vx", "vy", "vx_error", "vy_error"), VELOCITY_UNITS, \
                "velocity"
        else:
            kind, observed, units, what = GridSurface, ("surface", "surface_error"), LENGTH_UNITS, "length"
        fields = {}
        for field in observed:
            name = getattr(names, field)
            if name not in h5 and kind is GridVelocities and field == "vx":
                raise ObservationFileError(path, name, f"missing (nor is there a surface elevation "
                                           f"{names.surface!r}); the file holds {', '.join(sorted(h5.keys()))}")
            values = _read_variable(path, h5, name, units, what)
            if values.shape != (y.size, x.size):
                raise ObservationFileError(path, name, f"shape {values.shape}; expected ({names.y}, {names.x}) = "
                                           f"({y.size}, {x.size})")
            if not np.any(np.isfinite(values)):
                raise ObservationFileError(path, name, "every value is missing (fill value or NaN)")
            fields[field] = values
    unit = "m/yr" if kind is GridVelocities else "m"
    for field in (f for f in observed if f.endswith("error")):
        errors = fields[field]
        if np.any(errors[np.isfinite(errors)] <= 0):
            raise ObservationFileError(path, getattr(names, field), f"minimum {np.nanmin(errors):g} {unit}; "
                                       "standard errors must be > 0")
    gaps = ~np.all([np.isfinite(v) for v in fields.values()], axis=0)
    if np.all(gaps):
        raise ObservationFileError(path, getattr(names, observed[0]), f"no grid cell has all of "
                                   f"{', '.join(getattr(names, f) for f in observed)}")
    for values in fields.values():
        values[gaps] = np.nan
    if flip_x:
        x, fields = x[::-1], {k: v[:, ::-1] for k, v in fields.items()}
    if flip_y:
        y, fields = y[::-1], {k: v[::-1, :] for k, v in fields.items()}
    return kind(str(path), x, y, **{k: np.ascontiguousarray(v) for k, v in fields.items()})


def read_points(path) -> PointVelocities | PointSurface:
    """Read and check a CSV of point observations (module docstring): velocities if the header has ``vx`` or no
    ``surface`` column, else surface elevations."""
    with open(path, newline="") as f:
        lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ObservationFileError(path, "(header)", f"empty; the header must name the columns "
                                   f"{', '.join(POINT_COLUMNS)} (velocities) or {', '.join(SURFACE_COLUMNS)} "
                                   "(surface elevations)")
    reader = csv.DictReader(lines, skipinitialspace=True)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    kind, names, unit = ((PointSurface, SURFACE_COLUMNS, "m") if "surface" in header and "vx" not in header
                         else (PointVelocities, POINT_COLUMNS, "m/yr"))
    for column in names:
        if column not in header:
            raise ObservationFileError(path, column, f"missing column; the header has {', '.join(header)}")
    rows = list(reader)
    if not rows:
        raise ObservationFileError(path, "x", "no data rows")
    columns = {c: np.empty(len(rows)) for c in names}
    for line, row in enumerate(rows, start=2):
        for column in names:
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                raise ObservationFileError(path, column, f"row {line}: {row[column]!r} is not a number") from None
            if not math.isfinite(value):
                raise ObservationFileError(path, column, f"row {line}: {value}; values must be finite")
            columns[column][line - 2] = value
    if np.any(columns["sigma"] <= 0):
        raise ObservationFileError(path, "sigma", f"minimum {columns['sigma'].min():g} {unit}; standard errors must "
                                   "be > 0")
    return kind(str(path), **columns)


# -- on the mesh (Firedrake) ------------------------------------------------------------------------------------------
class MeshObservations:
    """One observation file on a model's mesh: :meth:`chi_squared` assembles (taped when pyadjoint annotates)
    :math:`\\sum_k \\omega_k \\sum_c (f_c(x_k) - d_{kc})^2 / \\sigma_{kc}^2` for the model field it was built on (the
    velocity, or the surface elevation), ``quantity`` is ``"velocity"`` or ``"surface"``, ``count`` is
    :math:`\\sum_k \\omega_k` (locations), ``components`` the components per location (2 or 1), ``observed`` the data
    as a Function (for output).  Build with :func:`observations_on_mesh`; the forms are built once and reassembled at
    every call."""

    def __init__(self, path: str, kind: str, quantity: str, count: float, components: int, observed, form,
                 sample=None):
        self.path, self.kind, self.quantity, self.count = path, kind, quantity, count
        self.components, self.observed = components, observed
        self._form = form
        self._sample = sample  # (Function on the points, the model field) for sampled data

    @property
    def size(self) -> float:
        """:math:`\\sum_k \\sum_c \\omega_k`: the number of observed values (weighted), the misfit's :math:`N`."""
        return self.components * self.count

    def chi_squared(self):
        from firedrake import assemble

        if self._sample is not None:
            sampled, field = self._sample
            sampled.interpolate(field)
        return assemble(self._form)


def observations_on_mesh(data, velocity=None, surface=None, grid_sampling: str = "auto") -> MeshObservations:
    """``data`` (:class:`GridVelocities`, :class:`PointVelocities`, :class:`GridSurface` or :class:`PointSurface`)
    on the mesh of the model field it observes, which the misfit will read: ``velocity`` (the model's velocity
    Function) or ``surface`` (a UFL expression of the model's thickness, icesheet.physics.surface).  A grid is
    interpolated onto the vertices or sampled at its points (``grid_sampling``: ``"vertices"``, ``"points"``, or
    ``"auto"``: points when it is finer than the mesh, module docstring).  Raises ObservationFileError if no datum
    falls on the mesh (grid) or a point lies outside it (points)."""
    if not isinstance(data, (GridVelocities, PointVelocities, GridSurface, PointSurface)):
        raise TypeError(f"data: {type(data).__name__}; expected GridVelocities, PointVelocities, GridSurface or "
                        "PointSurface")
    if grid_sampling not in ("auto", "vertices", "points"):
        raise ValueError(f"grid_sampling = {grid_sampling!r}: choose auto, vertices or points")
    field = velocity if data.quantity == "velocity" else surface
    if field is None:
        raise ValueError(f"observations {data.path!r} are of the {data.quantity}: pass the model's {data.quantity}")
    from ufl.domain import extract_unique_domain

    mesh = extract_unique_domain(field)
    values, errors = data.components()
    if isinstance(data, (PointVelocities, PointSurface)):
        return _sampled(data.path, "points", data.quantity, np.column_stack([data.x, data.y]), values, errors,
                        field, mesh, outside="refuse")
    if grid_sampling == "points" or (grid_sampling == "auto" and _finer_than(data, mesh)):
        X, Y = np.meshgrid(data.x, data.y)
        valid = data.valid
        return _sampled(data.path, "grid (sampled)", data.quantity, np.column_stack([X[valid], Y[valid]]),
                        [v[valid] for v in values], [e[valid] for e in errors], field, mesh, outside="drop")
    return _grid_on_vertices(data, field, mesh)


def _finer_than(data, mesh) -> bool:
    """Whether the grid's spacing is below SAMPLE_BELOW times the mesh's length per vertex."""
    import firedrake as fd

    area = fd.assemble(fd.Constant(1.0) * fd.dx(domain=mesh))
    vertices = fd.FunctionSpace(mesh, "CG", 1).dim()
    spacing = math.sqrt(float(np.mean(np.diff(data.x))) * float(np.mean(np.diff(data.y))))
    return spacing < SAMPLE_BELOW * math.sqrt(area / vertices)


def vertex_measure(mesh):
    r"""The measure :math:`dx` with the vertex quadrature rule (weight :math:`|T|/3` at each vertex of a triangle):
    :math:`\int f\,dx = \sum_k m_k f(x_k)` for P1 functions, :math:`m_k` the lumped mass.  It is FInAT's
    mass-lumping rule of degree 1 (Chin-Joe-Kong, Mulder & van Veldhuizen 1999, J. Eng. Math. 35)."""
    from firedrake import dx

    return dx(domain=mesh, scheme="KMV", degree=1)


def bilinear(data, points) -> tuple[np.ndarray, ...]:
    r"""Bilinear interpolation of the grid ``data`` at ``points`` (n, 2): its components then their errors, each
    (n,) (``(vx, vy, sigma_x, sigma_y)`` for velocities, ``(surface, sigma)`` for elevations), NaN where a grid value
    with a non-zero weight is a gap or the point is outside the grid.  The errors are propagated for independent
    grid errors, :math:`\sigma^2 = \sum_j w_j^2 \sigma_j^2` with :math:`w_j` the four bilinear weights, so that the
    interpolated data keep a misfit of 1 per observation at the truth whatever the grid's spacing and offset."""
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

    values, errors = data.components()
    result = tuple(combine(v, 1) for v in values) + tuple(np.sqrt(combine(e**2, 2)) for e in errors)
    for interpolated in result:
        interpolated[outside] = np.nan
    return result


def _space(mesh, components: int, family: str, degree: int):
    import firedrake as fd

    return (fd.VectorFunctionSpace(mesh, family, degree) if components == 2
            else fd.FunctionSpace(mesh, family, degree))


def _squares(weight, field, observed, components: int):
    """:math:`\\sum_c w_c (f_c - d_c)^2` (UFL)."""
    if components == 1:
        return weight * (field - observed) ** 2
    return sum(weight[c] * (field[c] - observed[c]) ** 2 for c in range(components))


def _set_columns(function, columns) -> None:
    """Write ``columns`` (one array per component) into ``function``'s local values."""
    local = function.dat.data_wo
    if local.ndim == 1:
        local[...] = columns[0][:len(local)]
    else:
        local[...] = np.column_stack(columns)[:len(local)]


def _grid_on_vertices(data, field, mesh) -> MeshObservations:
    import firedrake as fd
    from mpi4py import MPI

    V = fd.VectorFunctionSpace(mesh, "CG", 1)
    xy = fd.Function(V).interpolate(fd.SpatialCoordinate(mesh)).dat.data_ro
    interpolated = bilinear(data, xy)
    components = len(interpolated) // 2
    values, sigmas = interpolated[:components], interpolated[components:]
    valid = np.all([np.isfinite(v) for v in interpolated], axis=0)
    dx_vertex = vertex_measure(mesh)
    lumped = fd.assemble(fd.TestFunction(fd.FunctionSpace(mesh, "CG", 1)) * dx_vertex).dat.data_ro
    comm = mesh.comm
    count = int(comm.allreduce(int(np.count_nonzero(valid))))
    if count == 0:
        low = [comm.allreduce(float(xy[:, k].min()), op=MPI.MIN) for k in range(2)]
        high = [comm.allreduce(float(xy[:, k].max()), op=MPI.MAX) for k in range(2)]
        raise ObservationFileError(data.path, "x, y", f"the grid's data, x in [{data.x[0]:g}, {data.x[-1]:g}] m, "
                                   f"y in [{data.y[0]:g}, {data.y[-1]:g}] m, reach no vertex of the mesh "
                                   f"(x in [{low[0]:g}, {high[0]:g}], y in [{low[1]:g}, {high[1]:g}])")
    mean_mass = comm.allreduce(float(np.sum(lumped[valid]))) / count
    space = _space(mesh, components, "CG", 1)
    observed = fd.Function(space, name=f"observed_{data.quantity}")
    _set_columns(observed, [np.where(valid, v, 0.0) for v in values])
    weight = fd.Function(space, name="observation_weight")  # omega_k / sigma_kc^2, zero in gaps
    _set_columns(weight, [np.where(valid, 1 / np.where(valid, e, 1.0) ** 2, 0.0) / mean_mass for e in sigmas])
    form = _squares(weight, field, observed, components) * dx_vertex
    return MeshObservations(data.path, "grid", data.quantity, count, components, observed, form)


def _sampled(path, kind, quantity, points, values, errors, field, mesh, outside: str) -> MeshObservations:
    """Observations ``values`` (one array per component) with ``errors`` at ``points`` (n, 2), the model ``field``
    sampled there on a VertexOnlyMesh; points outside the mesh are refused (``outside="refuse"``, point files) or
    left out (``"drop"``, grid points)."""
    import firedrake as fd

    vom = fd.VertexOnlyMesh(mesh, points, redundant=True, missing_points_behaviour="ignore")
    found = int(mesh.comm.allreduce(vom.cell_set.size))
    if found == 0 and outside == "drop":
        raise ObservationFileError(path, "x, y", f"none of the grid's {len(points)} values lies in the mesh")
    if found < len(points) and outside == "refuse":
        inside = fd.Function(fd.FunctionSpace(vom.input_ordering, "DG", 0)).assign(np.nan)
        inside.interpolate(fd.Function(fd.FunctionSpace(vom, "DG", 0)).assign(1.0))
        local = inside.dat.data_ro.copy()  # collective access; the points are on rank 0
        flags = mesh.comm.bcast(local if mesh.comm.rank == 0 else None)
        first = int(np.flatnonzero(~(flags == 1.0))[0]) if np.any(flags != 1.0) else 0
        raise ObservationFileError(path, "x, y", f"{len(points) - found} of {len(points)} points lie outside "
                                   f"the mesh, the first in data row {first + 1} at ({points[first, 0]:g}, "
                                   f"{points[first, 1]:g}) m")
    components = len(values)
    W = _space(vom, components, "DG", 0)
    W_input = _space(vom.input_ordering, components, "DG", 0)

    def on_points(columns, name):
        in_order = fd.Function(W_input)
        _set_columns(in_order, columns)  # collective: every rank takes the view; the points are on rank 0
        return fd.Function(W, name=name).interpolate(in_order)

    observed = on_points(values, f"observed_{quantity}")
    weight = on_points([1 / e**2 for e in errors], "observation_weight")
    sampled = fd.Function(W, name=f"model_{quantity}_at_points")
    form = _squares(weight, sampled, observed, components) * fd.dx(domain=vom)
    return MeshObservations(path, kind, quantity, found, components, observed, form, sample=(sampled, field))


def misfit_per_observation(observations):
    """:math:`E = \\sum_s \\chi^2_s / \\sum_s N_s` over the sets ``observations`` (MeshObservations, :math:`N_s` their
    ``size``): the misfit per observed value (an AdjFloat when taped)."""
    total = sum(o.size for o in observations)
    value = None
    for o in observations:
        term = o.chi_squared()
        value = term if value is None else value + term
    return value / total
