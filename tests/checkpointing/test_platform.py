"""Platforms: parsing the 'c:w:r' spec and TOML files, the shipped platforms (checkpointing/data/platforms), writing
them back (to_dict, to_toml), resolving a name or a path, and every rejected input."""
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import checkpointing
from checkpointing.platform import (INF, Level, Platform, PlatformError, PlatformNotFoundError, load_platform,
                                    storage_platform,
                                    shipped_platforms)

PLATFORM_DIR = Path(checkpointing.__file__).parent / "data" / "platforms"  # the files in the source tree
SHIPPED = sorted(PLATFORM_DIR.glob("*.toml"))


def test_spec_parses_levels_fastest_first():
    p = Platform.from_spec("4:0:0, inf:2:3.5", uf=1.5, ub=2)
    assert p.capacities == [4, INF] and p.write_costs == [0.0, 2.0] and p.read_costs == [0.0, 3.5]
    assert (p.uf, p.ub, p.n_levels) == (1.5, 2.0, 2)
    assert [lev.name for lev in p.levels] == ["level0", "level1"]
    assert isinstance(p.capacities[0], int)
    assert Platform.from_spec("2:0:0,unbounded:1:1,Infinity:2:2").capacities == [2, INF, INF]


@pytest.mark.parametrize("spec, field", [
    ("4:0", "levels[0]"), ("4:0:0,", "levels[1]"), ("x:0:0", "levels[0].capacity"), ("2.5:0:0", "capacity"),
    ("-1:0:0", "capacity"), ("4:-1:0", "write_cost"), ("4:0:nan", "read_cost"), ("4:0:inf", "read_cost"),
    ("0:0:0", "capacities"), ("", "levels[0]"), ("1e400:0:0", "levels[0].capacity = '1e400'"),
    ("4:0:0,-1e400:1:1", "levels[1].capacity = '-1e400'"),
])
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(PlatformError, match=field.replace("[", r"\[").replace("]", r"\]")):
        Platform.from_spec(spec)


@pytest.mark.parametrize("uf, ub, field", [(-1, 1, "uf"), (1, math.inf, "ub"), ("fast", 1, "uf")])
def test_bad_step_costs(uf, ub, field):
    with pytest.raises(PlatformError, match=field):
        Platform.from_spec("2:0:0", uf, ub)


@pytest.mark.parametrize("capacity, expected", [("inf", INF), ("Unbounded", INF), (math.inf, INF), (3.0, 3),
                                                (np.int64(3), 3), (0, 0)])
def test_level_capacity_forms(capacity, expected):
    assert Level(capacity).capacity == expected


@pytest.mark.parametrize("capacity", [True, -2, 1.5, "lots", None, -math.inf])
def test_level_capacity_rejected(capacity):
    with pytest.raises(PlatformError, match="capacity"):
        Level(capacity)


def test_platform_needs_levels_of_the_right_type():
    with pytest.raises(PlatformError, match="at least one"):
        Platform(())
    with pytest.raises(PlatformError, match=r"levels\[0\]"):
        Platform(((4, 0, 0),))


def test_with_costs_and_sublevels():
    p = Platform.from_spec("2:0:0,5:1:1,inf:4:4", 1, 3)
    q = p.with_costs(ub=7)
    assert (q.uf, q.ub, q.levels) == (1.0, 7.0, p.levels)
    assert p.with_costs() == p
    assert p.sublevels(2).capacities == [2, 5] and p.sublevels(2).ub == 3.0


def test_shipped_platforms_exist():
    assert len(SHIPPED) >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_platform_is_documented_and_ordered(path):
    """Each shipped file loads, says what it models and where its costs come from, and lists its levels fastest
    first (write and read costs never decrease with the level)."""
    raw = tomllib.loads(path.read_text())
    assert raw["name"] == path.stem
    assert len(raw["description"]) > 20 and len(raw["source"]) > 20
    p = Platform.from_toml(path)
    assert p.name == path.stem and p.n_levels == len(raw["levels"])
    assert len({lev.name for lev in p.levels}) == p.n_levels
    assert p.write_costs == sorted(p.write_costs) and p.read_costs == sorted(p.read_costs)


def test_shipped_platforms_are_the_package_files_by_name():
    shipped = shipped_platforms()
    assert list(shipped) == [path.stem for path in SHIPPED]
    for name, resource in shipped.items():
        assert Platform.from_toml(resource) == Platform.from_toml(PLATFORM_DIR / f"{name}.toml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_to_dict_gives_back_the_tables_of_the_file(path):
    raw = tomllib.loads(path.read_text())
    data = Platform.from_toml(path).to_dict()
    assert (data["name"], data["uf"], data["ub"]) == (raw["name"], raw["uf"], raw["ub"])
    assert data["levels"] == [{"name": lev["name"], "capacity": lev["capacity"], "write": float(lev["write"]),
                               "read": float(lev["read"])} for lev in raw["levels"]]


costs = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False, allow_subnormal=False)
# (subnormals off: a library loaded by other tests may set flush-to-zero, which hypothesis refuses)
levels = st.builds(Level, st.one_of(st.integers(0, 10**9), st.just(INF)), costs, costs,
                   st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8))


@given(st.lists(levels, min_size=1, max_size=4).filter(lambda ls: sum(lev.capacity for lev in ls) >= 1),
       costs, costs, st.text(max_size=12), st.text(max_size=20))
def test_to_toml_is_read_back_exactly(levels_, uf, ub, name, description):
    platform = Platform(tuple(levels_), uf, ub, name)
    text = platform.to_toml(description=description, source="a test")
    assert Platform.from_dict(tomllib.loads(text)) == platform
    assert tomllib.loads(text).get("description", "") == description


def test_load_platform_takes_a_shipped_name_or_a_path(tmp_path):
    reference = Platform.from_toml(PLATFORM_DIR / "ram-disk.toml")
    assert load_platform("ram-disk") == load_platform("ram-disk.toml") == reference
    copy = tmp_path / "mine.toml"
    copy.write_text((PLATFORM_DIR / "ram-disk.toml").read_text())
    assert load_platform(str(copy)) == reference
    with pytest.raises(PlatformNotFoundError) as info:
        load_platform("ram-floppy", field="--platform")
    message = str(info.value)
    assert message.startswith("--platform = 'ram-floppy': no such file")
    assert all(name in message for name in shipped_platforms())


def write(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


LEVEL = '\n[[levels]]\ncapacity = 2\nwrite = 0.0\nread = 0.0\n'


def test_toml_round_values(tmp_path):
    p = Platform.from_toml(write(tmp_path, 'name = "t"\nuf = 2.0\nub = 3\n' + LEVEL +
                                 '[[levels]]\nname = "disk"\ncapacity = "inf"\nwrite = 1\nread = 0.5\n'))
    assert (p.name, p.uf, p.ub, p.capacities, p.read_costs) == ("t", 2.0, 3.0, [2, INF], [0.0, 0.5])
    assert p.levels[1].name == "disk" and p.levels[0].name == "level0"


@pytest.mark.parametrize("text, match", [
    ("uf = 1\n", "missing"),
    ("levels = 3\n", "levels = 3"),
    ("levels = [3]\n", r"levels\[0\] = 3"),
    ("speed = 1\n" + LEVEL, "unknown key"),
    ("[[levels]]\nwrite = 1\n", r"levels\[0\].capacity is missing"),
    ("[[levels]]\ncapacity = 1\ncolour = 'red'\n", "unknown key"),
    ("[[levels]]\ncapacity = 1\nwrite = -2\n", "write_cost"),
    ("uf = -1\n" + LEVEL, "uf"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_toml(tmp_path, text, match):
    with pytest.raises(PlatformError, match=match):
        Platform.from_toml(write(tmp_path, text))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(PlatformError, match="nowhere.toml"):
        Platform.from_toml(tmp_path / "nowhere.toml")


def test_describe_lists_every_level():
    text = Platform.from_spec("2:0:0,inf:2:2", 1, 5).describe()
    assert "uf = 1, ub = 5" in text and "capacity inf" in text and text.count("level ") == 2


def test_storage_platform_rule():
    """The --platform/--ram-slots/--disk-dir rule: one RAM level of l slots plus an unbounded disk per directory, a
    platform file's levels matched one to one with the directories, --ram-slots replacing level 0's capacity."""
    assert storage_platform(5).capacities == [5]
    both = storage_platform(5, ram_slots=2, disk_dirs=["a", "b"])
    assert both.capacities == [2, INF, INF] and both.name == "ram+disk1+disk2"
    shipped = next(iter(shipped_platforms()))
    base = load_platform(shipped)
    dirs = [f"d{k}" for k in range(1, base.n_levels)]
    assert storage_platform(5, shipped, None, dirs) == base
    assert storage_platform(5, shipped, 3, dirs).capacities == [3] + base.capacities[1:]
    with pytest.raises(PlatformError, match=f"give --disk-dir {base.n_levels - 1} times"):
        storage_platform(5, shipped, None, dirs + ["extra"])
    with pytest.raises(PlatformError, match="ram_slots = 0: .*no room for x_0"):
        storage_platform(5, ram_slots=0)
    with pytest.raises(PlatformError, match="ram_slots = -1: must be an integer >= 0"):
        storage_platform(5, ram_slots=-1)
    with pytest.raises(PlatformNotFoundError, match="nowhere"):
        storage_platform(5, "nowhere")
