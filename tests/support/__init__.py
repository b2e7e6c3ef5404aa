"""Test support, not installed: small models and drivers the tests run in-process or under ``mpiexec``.

``toymodel`` (nonlinear diffusion, a cheap model for the checkpoint manager), ``toy_gradient`` (its gradient through a
planned schedule as one JSON line, with a fault injector for the corrupted-checkpoint test) and ``parallel_check``
(a few steps of an ice scenario as one JSON line, for the 1-vs-2-rank test).  ``pyproject.toml`` puts ``tests/`` on
pytest's path (``import support.toymodel``); :func:`conftest.run_mpi` puts it on the subprocesses' ``PYTHONPATH``
(``python -m support.toy_gradient``).
"""

#: the environment of an ``mpiexec`` run beside a pytest worker: one OpenMP thread, Open MPI allowed as root and
#: oversubscribed, its ranks yielding the core while they wait (used by conftest.run_mpi and test_docs)
MPI_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                   "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_mpi_yield_when_idle": "1"}
