"""Registry of scenarios and their parameters (pure Python: no Firedrake import here).

A scenario is a name, a parameter file ``icesheet/data/scenarios/<name>.toml`` (package data) holding every parameter with its default, and
a builder ``"module:function"`` that turns the validated parameters into a model (imported only when a model is
built).  A user config file (TOML, same sections) overrides defaults; its keys must exist in the scenario's file.
To add a scenario: write its TOML file and builder and add one line to ``SCENARIOS``.
"""
from __future__ import annotations

import copy
import importlib
import importlib.resources
import math
import tomllib
from pathlib import Path

from icesheet.errors import ScenarioError
from icesheet.solver_options import (LINE_SEARCHES, LINEAR_SOLVERS, PRECONDITIONERS, STRATEGIES,
                                     THICKNESS_LINEAR_SOLVERS)

__all__ = ["SCENARIOS", "DEFAULT_SCENARIO", "SCENARIO_DIR", "ScenarioError", "scenario_parameters",
           "build_model", "apply_override", "check_state_file"]

SCENARIOS: dict[str, str] = {
    "ice_shelf_ramp": "icesheet.setups:ice_shelf_ramp",
    "van_der_veen_shelf": "icesheet.setups:van_der_veen_shelf",
    "marine_ice_stream": "icesheet.setups:marine_ice_stream",
    "mismip_ice0": "icesheet.setups:mismip_plus",
    "mismip_ice1r": "icesheet.setups:mismip_plus",
    "mismip_ice1ra": "icesheet.setups:mismip_plus",
    "halfar_dome": "icesheet.sia_setups:halfar_dome",
}
DEFAULT_SCENARIO = "marine_ice_stream"
SCENARIO_DIR = importlib.resources.files("icesheet") / "data" / "scenarios"  # a Traversable, read with .open()


# Constraints on parameters, by key name (any section); keys not listed must only be finite when numeric.
_POSITIVE = {"dt", "length", "width", "cell_size", "rate_factor", "temperature", "tolerance", "residual_tolerance",
             "newton_tolerance", "newton_switch", "linear_tolerance", "newton_linear_tolerance", "chord_rebuild",
             "chord_rebuild_inexact", "water_density",
             "ice_density", "rheology_si", "inflow_speed", "water_column_scale", "grounding_width"}
_NONNEGATIVE = {"friction", "front_speed_guess", "rate", "melt_factor"}
#: upper bounds by key name, with the reason given in the message
_AT_MOST = {
    "steps": (10**6, "the bound of 'checkpointing plan': schedules list every step"),
    "dt": (1.0e5, "a glacial cycle; a time step beyond the stable one is split into sub-steps anyway"),
    "inflow_speed": (1.0e5, "m/yr, faster than any glacier (the fastest flow about 2e4 m/yr)"),
    "front_speed_guess": (1.0e5, "m/yr, faster than any glacier (the fastest flow about 2e4 m/yr)"),
    "chord_rebuild": (1.0, "the residual ratio of a chord step above which the Jacobian is factorised anew"),
    "chord_rebuild_inexact": (1.0, "the residual ratio of a chord step above which the Schwarz operator is rebuilt"),
}
#: a structured mesh needs at least this many cells along each side the scenario resolves
MIN_CELLS_ACROSS = 2
#: at most this many triangles: the direct (LU) solvers' memory grows faster than linearly with the cell count
MAX_CELLS = 1_000_000
_POSITIVE_INT = {"degree", "max_iterations", "newton_max_iterations", "rebuild_iterations"}
_NONNEGATIVE_INT = {"steps", "anderson_depth", "preconditioner_lag", "chord_depth", "chord_depth_inexact"}
_CHOICES = {"adjoint_mode": ("fixed-point", "unrolled"), "newton_finish": ("auto", "on", "off"),
            "strategy": ("auto",) + STRATEGIES, "line_search": LINE_SEARCHES, "linear_solver": LINEAR_SOLVERS,
            "preconditioner": PRECONDITIONERS, "thickness_linear_solver": THICKNESS_LINEAR_SOLVERS,
            "friction_parameterisation": ("linear", "log"),
            "rate_factor_parameterisation": ("linear", "log"),
            "grounded_indicator": ("sharp", "smooth"),
            "melt_at_grounding_line": ("sub-element", "no-partial"),  # icesheet.melt.GROUNDING_LINE_MELT
            "supg_parameter": ("transient", "steady")}  # icesheet.transport.SUPG_PARAMETERS


def _check_value(key: str, value, default) -> None:
    name = key.rsplit(".", 1)[-1]
    if isinstance(default, bool) or isinstance(default, str):
        if type(value) is not type(default):
            raise ScenarioError(f"{key} = {value!r}: must be a {type(default).__name__}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ScenarioError(f"{key} = {value!r}: allowed values are {_CHOICES[name]}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{key} = {value!r}: must be a number")
    if isinstance(default, int) and not isinstance(value, int):
        raise ScenarioError(f"{key} = {value!r}: must be an integer")
    if not math.isfinite(value):
        raise ScenarioError(f"{key} = {value!r}: must be finite (not NaN or infinite)")
    if (name in _POSITIVE or name in _POSITIVE_INT) and value <= 0:
        raise ScenarioError(f"{key} = {value!r}: must be > 0")
    if (name in _NONNEGATIVE or name in _NONNEGATIVE_INT or "thickness" in name) and value < 0:
        raise ScenarioError(f"{key} = {value!r}: must be >= 0 (a thickness, count or coefficient)")
    if name in _AT_MOST and value > _AT_MOST[name][0]:
        bound, reason = _AT_MOST[name]
        raise ScenarioError(f"{key} = {value!r}: must be <= {bound:g} ({reason})")


def _check_mesh(parameters: dict, defaults: dict) -> None:
    """A structured mesh (no mesh.file) must have MIN_CELLS_ACROSS cells along each side that the scenario's own
    mesh resolves, and at most MAX_CELLS triangles."""
    mesh, default = parameters.get("mesh", {}), defaults.get("mesh", {})
    if mesh.get("file") or "cell_size" not in mesh:
        return
    size = mesh["cell_size"]
    sides = [(side, mesh[side]) for side in ("length", "width") if side in mesh]  # a square has only a length
    counts = []
    for side, extent in sides:
        count = max(1, math.ceil(extent / size - 1e-9))
        resolved = default[side] / default["cell_size"] >= MIN_CELLS_ACROSS  # a one-cell strip stays one cell
        if resolved and count < MIN_CELLS_ACROSS:
            raise ScenarioError(f"mesh.cell_size = {size:g}: the {side} of {extent:g} m would have {count} cell(s); "
                                f"at least {MIN_CELLS_ACROSS} are needed "
                                f"(cell_size <= {extent / MIN_CELLS_ACROSS:g} m)")
        counts.append(count if resolved else 1)
    extents = [extent for _, extent in sides]
    if len(sides) == 1:
        counts, extents = counts * 2, extents * 2
    cells = 2 * math.prod(counts)
    if cells > MAX_CELLS:
        smallest = math.sqrt(2 * math.prod(extents) / MAX_CELLS)
        raise ScenarioError(f"mesh.cell_size = {size:g}: the mesh would have about {cells:.3g} triangles, more than "
                            f"{MAX_CELLS:g} (the direct solvers' memory grows faster than linearly); use a cell_size "
                            f">= {smallest:.3g} m")


def _read_toml(path, what: str) -> dict:
    if not path.is_file():
        raise ScenarioError(f"{what} = {str(path)!r}: no such file")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{what} = {str(path)!r}: not valid TOML ({err})") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{what} = {str(path)!r}: not UTF-8 text ({err.reason} at byte {err.start}); it must "
                            "be a TOML file like data/scenarios/*.toml") from None
    except OSError as err:
        raise ScenarioError(f"{what} = {str(path)!r}: cannot be read ({err.strerror})") from None


def apply_override(parameters: dict, key: str, value) -> None:
    """Set ``parameters[section][name]`` for ``key = "section.name"`` after checking it (in place)."""
    section, _, name = key.partition(".")
    if section not in parameters or not isinstance(parameters[section], dict) or name not in parameters[section]:
        allowed = sorted(f"{s}.{k}" for s, table in parameters.items() if isinstance(table, dict) for k in table)
        raise ScenarioError(f"unknown config key {key!r}; allowed keys: {', '.join(allowed)}")
    default = parameters[section][name]
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    _check_value(key, value, default)
    parameters[section][name] = value


def scenario_parameters(name: str, config_file: str | Path | None = None, overrides: dict | None = None) -> dict:
    """The scenario's default parameters, updated by ``config_file`` (TOML) and then by ``overrides``
    (``{"section.key": value}``); every value checked.  Raises ScenarioError before any work is done."""
    if name not in SCENARIOS:
        raise ScenarioError(f"scenario = {name!r}: unknown; available scenarios: {', '.join(sorted(SCENARIOS))}")
    defaults = _read_toml(SCENARIO_DIR / f"{name}.toml", f"scenario file for {name!r}")
    parameters = copy.deepcopy(defaults)
    for section, table in defaults.items():
        for key, value in table.items():
            _check_value(f"{section}.{key}", value, value)
    if config_file is not None:
        config = _read_toml(Path(config_file), "config")
        for section, table in config.items():
            if not isinstance(table, dict):
                raise ScenarioError(f"config {str(config_file)!r}: {section!r} must be a [section] table; "
                                    f"sections: {', '.join(sorted(defaults))}")
            for key, value in table.items():
                apply_override(parameters, f"{section}.{key}", value)
    for key, value in (overrides or {}).items():
        apply_override(parameters, key, value)
    _check_mesh(parameters, defaults)
    mesh_file = parameters.get("mesh", {}).get("file", "")
    if mesh_file and not Path(mesh_file).is_file():
        raise ScenarioError(f"mesh.file = {mesh_file!r}: no such file")
    return parameters


def config_keys(config, section: str) -> set:
    """The keys of ``[section]`` in the config file ``config`` (None: none), as the user gave them (the file is
    validated by :func:`scenario_parameters`)."""
    if config is None:
        return set()
    return set(tomllib.loads(Path(config).read_text(encoding="utf-8")).get(section, {}))


def check_state_file(path: Path, field: str = "initial_state") -> None:
    """ScenarioError unless ``path`` is an existing HDF5 file (as IceModel.save_state writes; its content is
    checked when the model reads it)."""
    if not path.is_file():
        raise ScenarioError(f"{field} = {str(path)!r}: no such file")
    if not _is_hdf5(path):
        raise ScenarioError(f"{field} = {str(path)!r}: not an HDF5 file (write one with IceModel.save_state)")


def _is_hdf5(path: Path) -> bool:
    """Whether ``path`` starts with the HDF5 signature, at byte 0 or after a user block of 512, 1024, 2048, ...
    bytes (the HDF5 file format specification, "Format Signature")."""
    signature, offset = b"\x89HDF\r\n\x1a\n", 0
    with open(path, "rb") as fh:
        size = path.stat().st_size
        while offset + len(signature) <= size:
            fh.seek(offset)
            if fh.read(len(signature)) == signature:
                return True
            offset = 512 if offset == 0 else 2 * offset
    return False


def build_model(name: str, parameters: dict, **model_options):
    """Build the scenario's model from validated ``parameters`` (imports its builder, hence Firedrake)."""
    if name not in SCENARIOS:
        raise ScenarioError(f"scenario = {name!r}: unknown; available scenarios: {', '.join(sorted(SCENARIOS))}")
    module, _, function = SCENARIOS[name].partition(":")
    return getattr(importlib.import_module(module), function)(parameters, **model_options)
