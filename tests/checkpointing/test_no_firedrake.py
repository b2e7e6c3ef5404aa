"""The schedules are pure Python: importing every module of ``checkpointing`` outside ``checkpointing.adjoint``
loads neither Firedrake nor PETSc (planners never import Firedrake; docs/checkpointing.md)."""
import subprocess
import sys

CODE = """
import importlib, pkgutil, sys
import checkpointing
# iter_modules, not walk_packages: walking would import the subpackage checkpointing.adjoint itself
names = [m.name for m in pkgutil.iter_modules(checkpointing.__path__, "checkpointing.")
         if not m.name.startswith("checkpointing.adjoint") and m.name != "checkpointing.__main__"]
for name in names:
    importlib.import_module(name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("firedrake", "petsc4py", "pyadjoint", "ufl"))
print(len(names), heavy)
assert not heavy, heavy
"""


def test_pure_modules_do_not_import_firedrake():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = int(proc.stdout.split()[0])
    assert count >= 8  # simulator, planners, revolve, hrevolve, heuristics, cli, interop, ...
