"""Experiments: scripts that regenerate the figures and tables (``python -m experiments.all --out DIR``)."""
import os

# Firedrake hands sys.argv to PETSc; an experiment's own flags would be reported as unused PETSc options at exit.
os.environ.setdefault("PETSC_OPTIONS", "-options_left no")
