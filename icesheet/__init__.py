"""Ice-flow model on Firedrake (metres, years, MPa).

Modules, one concept each:

- ``constants``: physical constants and Glen's rate factor A(T);
- ``physics``: UFL terms (``physics.geometry``: surface, flotation; ``physics.ssa``: the shallow-stream momentum
  balance; ``physics.sia``: the shallow-ice flux); ``transport``: the weak form of the thickness equation;
- ``velocity_solver`` (Picard, Anderson-accelerated Picard, Picard-then-Newton, Newton; adjoint modes; options in
  ``solver_options``, Anderson mixing in ``anderson``; docs/solvers.md) and ``thickness_solver`` (backward Euler +
  clamp): the numerics;
- ``model``: ``IceModel``, its state ``(thickness, velocity)``, ``step``/``run``, diagnostics, state copies;
  ``sia``: ``SIAModel``, the shallow-ice model; ``timeloop``: ``run_steps``, ``StepInfo``, ``check_field`` (both);
- ``controls``: control names, the manager's time loop and ``compute_gradient`` (through
  ``checkpointing.adjoint.gradient``); ``functionals``: volume, VAF, velocity misfit;
- ``observations`` (velocity grids and points from files, their misfit on the mesh), ``inversion`` (snapshot and
  transient inversions, the discrepancy principle), ``optimisation`` (resumable L-BFGS), ``synthetic``
  (observation files from a model velocity);
- ``scenarios`` (registry and parameters, no Firedrake) and ``setups``/``sia_setups`` (builders);
- ``cli`` and ``commands``: the ``icesheet`` command line; ``output``: VTK, CSV, plots, summary.

Nothing here imports Firedrake at package import time, so input checks run without it.
"""
