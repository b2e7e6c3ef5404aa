r"""An ensemble of ice-model runs under different accumulation forcings, joined by the mean of a functional at the
end: the join graph of docs/join_graphs.md, differentiated with respect to shared controls.

Run ``b = 0 .. p-1`` starts from the model's state, takes ``steps`` steps of ``dt`` years with the accumulation
:math:`a_b` and ends in :math:`x^b_l`; the functional is the ensemble mean

.. math::  J = \frac1p \sum_{b=0}^{p-1} j(x^b_l),

with :math:`j` one of icesheet/functionals.py (``"vaf"``: the volume above flotation), or, given a ``target``
:math:`T`, the misfit of that mean, :math:`J = (\bar y - T)^2 / (2T)` with :math:`\bar y` the mean (same units as
:math:`j`; scaled so that :math:`J' = \bar y / T - 1` is of order one): a functional of the joined runs that no
single run determines.  All runs share the parameter controls (e.g. the basal
friction), so :math:`dJ/dp = \phi'(\bar y) \frac1p \sum_b dj(x^b_l)/dp` (:math:`\phi' = 1` for the mean itself).  One model computes every run:
activating run ``b`` assigns :math:`a_b` to ``model.accumulation`` (untaped), whose forms are built once; each
run's schedule actions then act on the model's state (checkpointing/adjoint/join.py).
"""
from __future__ import annotations

from .controls import CONTROLS, control_function
from .functionals import density

__all__ = ["ensemble_loop"]


def ensemble_loop(model, accumulations, steps: int, dt: float, functional: str = "vaf", controls=("friction",),
                  target: float | None = None):
    """The :class:`checkpointing.adjoint.join.JoinLoop` of the ensemble: one run per entry of ``accumulations``
    (numbers in m/yr, or UFL expressions), each of ``steps`` steps of ``dt`` years, joined by the mean of
    ``functional`` (or the misfit of that mean to ``target``, same units); ``controls`` are parameter controls of
    icesheet/controls.py (not ``thickness``)."""
    import firedrake as fd
    import firedrake.adjoint  # noqa: F401  (pyadjoint's overloads: assemble returns an AdjFloat)
    from checkpointing.adjoint.join import JoinLoop

    accumulations = list(accumulations)
    if not accumulations:
        raise ValueError("accumulations = []: the ensemble needs at least one run")
    if target is not None and not (isinstance(target, (int, float)) and target > 0):
        raise ValueError(f"target = {target!r}: the target of the ensemble mean must be a number > 0")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps = {steps!r}: each run needs an integer number of steps >= 1")
    for control in controls:
        if control == "thickness":
            raise ValueError(f"controls: 'thickness' is each run's initial state, not a shared parameter; choose "
                             f"from {[c for c in CONTROLS if c != 'thickness']}")
    space = model.accumulation.function_space()
    with fd.adjoint.stop_annotating():
        own = model.accumulation.copy(deepcopy=True)
        forcings = [fd.Function(space, name=f"accumulation_{b}").interpolate(
            a if not isinstance(a, (int, float)) else fd.Constant(a)) for b, a in enumerate(accumulations)]
    form = density(model, functional) * fd.dx
    weight = 1.0 / len(accumulations)

    def activate(b):
        model.accumulation.assign(own if b is None else forcings[b])

    def join_term(b, state):
        return weight * fd.assemble(form)

    outer = None if target is None else (lambda y: (y - target) ** 2 / (2 * target), lambda y: y / target - 1.0)
    return JoinLoop(model, [[float(dt)] * steps] * len(accumulations),
                    tuple(control_function(model, c) for c in controls), activate, join_term, outer)
