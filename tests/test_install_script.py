"""scripts/install.sh refuses bad set-ups with a clear message before it touches anything."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install.sh"


def run_install(tmp_path, **env):
    full = dict(os.environ, **env)
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, timeout=60, cwd=tmp_path)


def test_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_missing_python_is_named(tmp_path):
    proc = run_install(tmp_path, ICESHEET_PYTHON="python-that-does-not-exist", ICESHEET_CACHE=str(tmp_path / "c"))
    assert proc.returncode != 0
    assert "phase 'checks'" in proc.stdout
    assert "python-that-does-not-exist" in proc.stdout and "ICESHEET_PYTHON" in proc.stdout
    assert not (tmp_path / "c").exists()


def test_unsupported_python_version_is_named(tmp_path):
    fake = tmp_path / "python9"
    fake.write_text("#!/bin/sh\necho 2.7\n")
    fake.chmod(0o755)
    proc = run_install(tmp_path, ICESHEET_PYTHON=str(fake), ICESHEET_CACHE=str(tmp_path / "c"))
    assert proc.returncode != 0
    assert "unsupported Python 2.7" in proc.stdout


def test_unwritable_cache_is_named(tmp_path):
    proc = run_install(tmp_path, ICESHEET_CACHE="/proc/icesheet-cache-here")
    assert proc.returncode != 0
    assert "/proc/icesheet-cache-here" in proc.stdout and "ICESHEET_CACHE" in proc.stdout


def test_library_directory_is_the_machine_multiarch_not_a_hard_coded_one():
    """PETSc's HDF5 and h5py are pointed at Debian's multiarch directory of this machine (oracle: gcc's own
    ``-print-multiarch``), which holds the parallel HDF5 library; no architecture is written into the script."""
    text = SCRIPT.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "x86_64-linux-gnu" not in code and "aarch64-linux-gnu" not in code
    definition = next(line for line in text.splitlines() if line.startswith("multiarch()"))
    found = subprocess.run(["bash", "-c", f"{definition}\nmultiarch"], capture_output=True, text=True)
    expected = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    assert found.returncode == 0 and found.stdout.strip() == expected != ""
    assert (Path("/usr/lib") / expected / "hdf5" / "openmpi" / "libhdf5.so").exists()
