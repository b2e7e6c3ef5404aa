"""Shared test helpers.

``run_mpi`` runs a Python module under ``mpiexec -n 2`` in a subprocess and returns the JSON object that rank 0
printed on its last stdout line: the MPI tests compare that with the serial result computed in-process.  The
subprocess finds the test-support modules (``support.*``, tests/support/) through ``PYTHONPATH``, as pytest does
through ``pythonpath`` in pyproject.toml.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import MPI_ENVIRONMENT

TESTS = Path(__file__).resolve().parent


def run_mpi(module: str, *args: str, ranks: int = 2, timeout: float = 600) -> dict:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.fail("mpiexec not found: Debian's openmpi-bin is needed (scripts/install.sh installs it)")
    env = dict(os.environ, **MPI_ENVIRONMENT,
               PYTHONPATH=os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, "-m", module, *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        pytest.fail(f"mpiexec -n {ranks} python -m {module} {' '.join(args)} failed ({proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    # The ranks share stdout: another rank's line without its newline yet (pyadjoint's taylor_test prints on every
    # rank) can run into the JSON line, so the last line that holds a JSON object from its first brace on is taken.
    for line in reversed(proc.stdout.splitlines()):
        if "{" in line:
            try:
                result = json.loads(line[line.index("{"):])
            except json.JSONDecodeError:
                continue
            if isinstance(result, dict):
                return result
    pytest.fail(f"no JSON line in the output of {module}:\n{proc.stdout[-3000:]}")


@pytest.fixture
def mpi_run():
    """The ``run_mpi`` function, as a fixture."""
    return run_mpi


# Firedrake hands sys.argv to PETSc; pytest's own flags would then be reported as unused PETSc options at exit.
os.environ.setdefault("PETSC_OPTIONS", "-options_left no")
