"""Test support, not installed: small models and drivers the tests run in-process or under ``mpiexec``.

``toymodel`` (nonlinear diffusion, a cheap model for the checkpoint manager), ``toy_gradient`` (its gradient through a
planned schedule as one JSON line, with a fault injector for the corrupted-checkpoint test) and ``parallel_check``
(a few steps of an ice scenario as one JSON line, for the 1-vs-2-rank test).  ``pyproject.toml`` puts ``tests/`` on
pytest's path (``import support.toymodel``); :func:`conftest.run_mpi` puts it on the subprocesses' ``PYTHONPATH``
(``python -m support.toy_gradient``).
"""
