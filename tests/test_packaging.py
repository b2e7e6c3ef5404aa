"""The data files ship with the packages: a wheel built from the tracked files (what a clean clone holds) carries
every scenario and platform file, and an installed copy reads them through importlib.resources, away from the
source tree (no path relative to a checkout).

Oracle: the list of tracked ``*.toml`` files under ``icesheet/data/`` and ``checkpointing/data/`` (``git ls-files``),
and the parameters read straight from those files.
"""
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ("icesheet/data/", "checkpointing/data/")


def tracked() -> list[str]:
    proc = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"git ls-files failed in {ROOT}: {proc.stderr.strip()}")
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from a copy of the tracked files, and the directory it is installed into."""
    tmp = tmp_path_factory.mktemp("packaging")
    clone = tmp / "clone"
    for name in tracked():
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    wheels, site = tmp / "wheels", tmp / "site"
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(clone)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    wheel = next(wheels.glob("icesheet_adjoint-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # a wheel is installed by unpacking it (PEP 427); no pip needed for that
        names = archive.namelist()
    return names, site


def test_the_wheel_carries_every_data_file(installed):
    names, _ = installed
    data = [name for name in tracked() if name.startswith(DATA) and name.endswith(".toml")]
    assert len(data) >= 8
    assert sorted(name for name in names if name.startswith(DATA)) == sorted(data)


def test_an_installed_copy_reads_its_data_through_importlib_resources(installed, tmp_path):
    _, site = installed
    script = (
        "import json, icesheet, checkpointing\n"
        "from icesheet.scenarios import SCENARIOS, scenario_parameters\n"
        "from checkpointing.platform import load_platform, shipped_platforms\n"
        "print(json.dumps({'files': [icesheet.__file__, checkpointing.__file__],\n"
        "                  'scenarios': {n: scenario_parameters(n) for n in SCENARIOS},\n"
        "                  'platforms': {n: load_platform(n).to_dict() for n in shipped_platforms()}}))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout)
    assert all(Path(f).is_relative_to(site) for f in found["files"]), found["files"]
    for name, parameters in found["scenarios"].items():
        assert parameters == tomllib.loads((ROOT / "icesheet/data/scenarios" / f"{name}.toml").read_text())
    shipped = sorted(p.stem for p in (ROOT / "checkpointing/data/platforms").glob("*.toml"))
    assert sorted(found["platforms"]) == shipped
    for name, platform in found["platforms"].items():
        raw = tomllib.loads((ROOT / "checkpointing/data/platforms" / f"{name}.toml").read_text())
        assert [level["capacity"] for level in platform["levels"]] == [level["capacity"] for level in raw["levels"]]
