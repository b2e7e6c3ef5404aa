"""Ice-flow model on Firedrake (metres, years, MPa).

Modules, one concept each:

- ``constants``: physical constants and Glen's rate factor A(T);
- ``physics``: UFL terms of the shallow-stream momentum balance (viscosity, friction, driving and front stress,
  surface, flotation); ``transport``: the weak form of the thickness equation;
- ``velocity_solver`` (Picard, Anderson-accelerated Picard, Picard-then-Newton, Newton; adjoint modes; options in
  ``solver_options``, Anderson mixing in ``anderson``; docs/solvers.md) and ``thickness_solver`` (backward Euler +
  clamp): the numerics;
- ``model``: ``IceModel``, its state ``(thickness, velocity)``, ``step``/``run``, diagnostics, state copies;
- ``scenarios`` (registry and parameters, no Firedrake) and ``setups`` (builders); ``sia``: the shallow-ice model;
- ``cli`` and ``commands``: the ``icesheet`` command line; ``output``: VTK, CSV, plots, summary.

Nothing here imports Firedrake at package import time, so input checks run without it.
"""
