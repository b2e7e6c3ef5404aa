"""Storage platforms: K levels of checkpoint storage and the costs of forward and backward steps.

The cost model is that of Herrmann & Pallez (2020), "H-Revolve: a framework for adjoint computation on
synchronous hierarchical platforms", ACM TOMS 46(2), section 2: level ``k`` (``k = 0`` the fastest, usually RAM)
holds at most ``c_k`` checkpoints, writing one costs ``w_k`` and reading one costs ``r_k``; a forward step costs
``uf`` and a backward step ``ub``.  Costs are in any one time unit (seconds when calibrated, or multiples of ``uf``).

Platform files (TOML: ``name``, ``description``, ``source``, ``uf``, ``ub`` and one ``[[levels]]`` table per level
with ``name``, ``capacity``, ``write``, ``read``) ship as package data in ``checkpointing/data/platforms/``;
:func:`load_platform` takes a file path or the name of a shipped file, for every command line.
"""
from __future__ import annotations

import importlib.resources
import math
import numbers
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Level", "Platform", "PlatformError", "PlatformNotFoundError", "INF", "shipped_platforms",
           "load_platform", "storage_platform"]

INF = math.inf


class PlatformError(ValueError):
    """A platform description is invalid; the message names the field, the value and what is allowed."""

    exit_status = 2  # checkpointing/exits.py


class PlatformNotFoundError(PlatformError):
    """A platform named on a command line is neither a file nor a shipped platform."""


def check_cost(name: str, value) -> float:
    """``value`` as a finite cost >= 0, or PlatformError naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise PlatformError(f"{name} = {value!r}: a cost must be a finite number >= 0") from None
    if not math.isfinite(x) or x < 0:
        raise PlatformError(f"{name} = {value!r}: a cost must be a finite number >= 0")
    return x


def _check_capacity(name: str, value):
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinity", "unbounded"):
        return INF
    if isinstance(value, float) and value == INF:
        return INF
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # numpy integers too
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise PlatformError(f"{name} = {value!r}: a capacity must be an integer >= 0 or 'inf'")
    if value < 0:
        raise PlatformError(f"{name} = {value!r}: a capacity must be an integer >= 0 or 'inf'")
    return int(value)


@dataclass(frozen=True)
class Level:
    """One storage level: ``capacity`` slots (``c_k``, an int or ``math.inf``), ``write_cost`` (``w_k``),
    ``read_cost`` (``r_k``)."""

    capacity: int | float
    write_cost: float = 0.0
    read_cost: float = 0.0
    name: str = ""

    def __post_init__(self):
        label = self.name or "level"
        object.__setattr__(self, "capacity", _check_capacity(f"{label}.capacity", self.capacity))
        object.__setattr__(self, "write_cost", check_cost(f"{label}.write_cost", self.write_cost))
        object.__setattr__(self, "read_cost", check_cost(f"{label}.read_cost", self.read_cost))


@dataclass(frozen=True)
class Platform:
    """A hierarchy of storage levels, fastest first, with forward cost ``uf`` and backward cost ``ub`` per step."""

    levels: tuple[Level, ...]
    uf: float = 1.0
    ub: float = 1.0
    name: str = ""

    def __post_init__(self):
        levels = tuple(self.levels)
        if len(levels) == 0:
            raise PlatformError("levels = []: a platform needs at least one storage level")
        named = []
        for k, lev in enumerate(levels):
            if not isinstance(lev, Level):
                raise PlatformError(f"levels[{k}] = {lev!r}: expected a checkpointing.Level")
            named.append(lev if lev.name else Level(lev.capacity, lev.write_cost, lev.read_cost, name=f"level{k}"))
        if sum(lev.capacity for lev in named) < 1:
            raise PlatformError("capacities = [" + ", ".join(str(l.capacity) for l in named) + "]: "
                                "the platform has no room for x_0; at least one level needs capacity >= 1")
        object.__setattr__(self, "levels", tuple(named))
        object.__setattr__(self, "uf", check_cost("uf", self.uf))
        object.__setattr__(self, "ub", check_cost("ub", self.ub))

    # convenient views --------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def capacities(self) -> list:
        return [lev.capacity for lev in self.levels]

    @property
    def write_costs(self) -> list[float]:
        return [lev.write_cost for lev in self.levels]

    @property
    def read_costs(self) -> list[float]:
        return [lev.read_cost for lev in self.levels]

    def with_costs(self, uf: float | None = None, ub: float | None = None) -> "Platform":
        return Platform(self.levels, self.uf if uf is None else uf, self.ub if ub is None else ub, self.name)

    def sublevels(self, count: int) -> "Platform":
        """The platform made of the ``count`` fastest levels (used by the heuristics)."""
        return Platform(self.levels[:count], self.uf, self.ub, self.name)

    # constructors -----------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: str, uf: float = 1.0, ub: float = 1.0) -> "Platform":
        """Parse ``"c:w:r,c:w:r,..."`` (fastest level first; ``c`` may be ``inf``), e.g. ``"4:0:0,inf:2:2"``."""
        levels = []
        for k, part in enumerate(p for p in spec.split(",")):
            fields = part.strip().split(":")
            if len(fields) != 3:
                raise PlatformError(f"levels[{k}] = {part.strip()!r}: expected 'capacity:write:read', e.g. '4:0:0' or 'inf:2:2'")
            c, w, r = fields
            try:
                cap = c if c.strip().lower() in ("inf", "infinity", "unbounded") else float(c)
            except ValueError:
                raise PlatformError(f"levels[{k}].capacity = {c!r}: a capacity must be an integer >= 0 or 'inf'") from None
            if isinstance(cap, float) and not math.isfinite(cap):  # '1e400' overflows: not a way to say 'inf'
                raise PlatformError(f"levels[{k}].capacity = {c!r}: a capacity must be an integer >= 0, or 'inf' for "
                                    "an unbounded level")
            levels.append(Level(cap, w, r, name=f"level{k}"))
        return cls(tuple(levels), uf, ub)

    @classmethod
    def from_dict(cls, data: dict, source: str = "platform") -> "Platform":
        allowed = {"name", "uf", "ub", "levels", "description", "source"}
        unknown = set(data) - allowed
        if unknown:
            raise PlatformError(f"{source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "levels" not in data:
            raise PlatformError(f"{source}: missing [[levels]] tables")
        if not isinstance(data["levels"], list):
            raise PlatformError(f"{source}: levels = {data['levels']!r}: expected a list of [[levels]] tables")
        for key in ("name", "description", "source"):
            if key in data and not isinstance(data[key], str):
                raise PlatformError(f"{source}: {key} = {data[key]!r}: must be a string (in quotes)")
        levels = []
        for k, lev in enumerate(data["levels"]):
            if not isinstance(lev, dict):
                raise PlatformError(f"{source}: levels[{k}] = {lev!r}: expected a table with capacity, write, read")
            lallowed = {"name", "capacity", "write", "read", "description"}
            unknown = set(lev) - lallowed
            if unknown:
                raise PlatformError(f"{source}: levels[{k}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(lallowed)}")
            if "capacity" not in lev:
                raise PlatformError(f"{source}: levels[{k}].capacity is missing (an integer >= 0 or 'inf')")
            if isinstance(lev["capacity"], float) and not math.isfinite(lev["capacity"]):
                raise PlatformError(f"{source}: levels[{k}].capacity = {lev['capacity']!r} (a number too large for a "
                                    "float, or TOML's inf): write capacity = \"inf\" (a string) for an unbounded "
                                    "level, or an integer >= 0")
            for key in ("name", "description"):
                if key in lev and not isinstance(lev[key], str):
                    raise PlatformError(f"{source}: levels[{k}].{key} = {lev[key]!r}: must be a string (in quotes)")
            levels.append(Level(lev["capacity"], lev.get("write", 0.0), lev.get("read", 0.0),
                                name=lev.get("name", f"level{k}")))
        return cls(tuple(levels), data.get("uf", 1.0), data.get("ub", 1.0), data.get("name", ""))

    @classmethod
    def from_toml(cls, path) -> "Platform":
        """Read a platform from a TOML file (a path, or a shipped resource of :func:`shipped_platforms`)."""
        path = Path(path) if isinstance(path, (str, os.PathLike)) else path
        if not path.is_file():
            raise PlatformError(f"platform file {str(path)!r} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PlatformError(f"platform file {str(path)!r} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise PlatformError(f"platform file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                "a platform file is TOML, see checkpointing/data/platforms/") from None
        except OSError as exc:
            raise PlatformError(f"platform file {str(path)!r} cannot be read: {exc.strerror}") from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict:
        """The platform as the tables of a platform file (:meth:`from_dict` reads it back); capacity ``"inf"``."""
        return {"name": self.name, "uf": self.uf, "ub": self.ub,
                "levels": [{"name": lev.name, "capacity": "inf" if lev.capacity == INF else lev.capacity,
                            "write": lev.write_cost, "read": lev.read_cost} for lev in self.levels]}

    def to_toml(self, description: str = "", source: str = "") -> str:
        """The platform as a platform file (:meth:`from_toml` reads it back exactly: floats are written by repr)."""
        data = self.to_dict()
        lines = [f"name = {_toml_string(self.name)}"]
        lines += [f"{key} = {_toml_string(text)}" for key, text in (("description", description),
                                                                    ("source", source)) if text]
        lines += [f"uf = {self.uf!r}", f"ub = {self.ub!r}"]
        for level in data["levels"]:
            capacity = level["capacity"]
            lines += ["", "[[levels]]", f"name = {_toml_string(level['name'])}",
                      f"capacity = {_toml_string(capacity) if capacity == 'inf' else capacity}",
                      f"write = {level['write']!r}", f"read = {level['read']!r}"]
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        rows = [f"uf = {self.uf:g}, ub = {self.ub:g}"]
        for k, lev in enumerate(self.levels):
            rows.append(f"  level {k} ({lev.name}): capacity {lev.capacity}, write {lev.write_cost:g}, read {lev.read_cost:g}")
        return "\n".join(rows)


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quote, backslash and control characters escaped (TOML 1.0, "String")."""
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else "\\" + c if c in '"\\' else c
                      for c in text)
    return f'"{escaped}"'


def shipped_platforms() -> dict:
    """The platform files shipped with the package (``checkpointing/data/platforms/NAME.toml``), as
    ``{NAME: resource}`` sorted by name; each resource is a :class:`importlib.resources.abc.Traversable`."""
    folder = importlib.resources.files("checkpointing") / "data" / "platforms"
    files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".toml")), key=lambda e: e.name)
    return {entry.name[:-len(".toml")]: entry for entry in files}


def load_platform(text: str, field: str = "platform") -> Platform:
    """The platform of the TOML file ``text``, or of the shipped platform named ``text`` (with or without
    ``.toml``); raises :class:`PlatformError` naming ``field`` and the shipped names when it is neither."""
    path = Path(text)
    if path.is_file():
        return Platform.from_toml(path)
    shipped = shipped_platforms()
    name = text[:-len(".toml")] if text.endswith(".toml") else text
    if name in shipped:
        return Platform.from_toml(shipped[name])
    raise PlatformNotFoundError(f"{field} = {text!r}: no such file, nor a shipped platform (one of: {', '.join(shipped)})")


def storage_platform(steps: int, platform: str | None = None, ram_slots: int | None = None,
                     disk_dirs=()) -> Platform:
    """The storage platform of a gradient over ``steps`` steps, the rule of the ``--platform`` / ``--ram-slots`` /
    ``--disk-dir`` options of ``icesheet gradient`` and ``icesheet invert``: the platform file or shipped platform
    ``platform`` (:func:`load_platform`), whose levels ``k >= 1`` must match the disk directories ``disk_dirs``
    one to one; without it one RAM level of ``steps`` slots (store-all fits) plus one unbounded disk level per
    directory.  ``ram_slots`` replaces level 0's capacity.  Only ``len(disk_dirs)`` matters here (the directories
    are named in the message); checkpointing/adjoint/driver.py pairs them with the levels.  Raises PlatformError
    (exit status 2) naming the option."""
    if ram_slots is not None and (isinstance(ram_slots, bool) or ram_slots < 0):
        raise PlatformError(f"ram_slots = {ram_slots!r}: must be an integer >= 0")
    disk_dirs = [str(d) for d in disk_dirs]
    if platform is not None:
        try:
            base = load_platform(platform)
        except PlatformNotFoundError:
            raise
        except PlatformError as err:
            raise PlatformError(f"platform: {err}") from None
        levels = list(base.levels)
        if len(disk_dirs) != len(levels) - 1:
            raise PlatformError(f"disk_dir = {disk_dirs}: platform {base.name!r} has {len(levels)} levels, so give "
                                f"--disk-dir {len(levels) - 1} times (level 0 is RAM)")
        uf, ub, name = base.uf, base.ub, base.name
    else:
        disks = range(1, len(disk_dirs) + 1)
        levels = [Level(steps, name="ram")] + [Level(INF, name=f"disk{k}") for k in disks]
        uf, ub, name = 1.0, 1.0, "ram" + "".join(f"+disk{k}" for k in disks)
    if ram_slots is not None:
        ram = levels[0]
        levels[0] = Level(ram_slots, ram.write_cost, ram.read_cost, ram.name)
    try:
        return Platform(tuple(levels), uf, ub, name)
    except PlatformError as err:
        raise PlatformError(f"ram_slots = {ram_slots!r}: {err}") from None
