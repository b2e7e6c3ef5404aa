r"""Objective functionals of the ice model, as the terms :math:`j_i(x_i)` of :math:`J = \sum_i j_i(x_i)` that the
checkpoint manager sums (checkpointing/adjoint/protocol.py: ``functional(i, state) -> AdjFloat | None``).

Densities (integrated over the domain :math:`\Omega` with ``firedrake.assemble``, so pyadjoint tapes them):

``volume``
    :math:`V(h) = \int_\Omega h\,dx` (m^3).
``vaf``
    volume above flotation :math:`\int_\Omega h_{af}\,dx` (m^3), with :math:`h_{af} = \max(h + (\rho_W/\rho_I) b, 0)`
    where the bed is below sea level (:math:`b < 0`) and :math:`h_{af} = h` elsewhere (docs/model.md, section 3;
    ``icesheet.physics.thickness_above_flotation``, the model's own VAF diagnostic).  The max is not smoothed: it
    is a kink (continuous, piecewise linear), not a jump, so :math:`J` stays Lipschitz with a derivative defined
    almost everywhere, and a perturbation of size :math:`\epsilon` that moves quadrature points across the kink
    changes :math:`J` by :math:`O(\epsilon^2)`, which leaves the Taylor remainder second order.
``misfit``
    :math:`\tfrac12 \int_\Omega |u - u^{obs}|^2 / \sigma^2\,dx` (m^2: velocities and :math:`\sigma` in m/yr), the
    velocity misfit of data assimilation (MacAyeal 1993; Goldberg et al. 2016, eq. 7 without regularisation).

Times (``when``): ``"final"`` gives :math:`J = j(x_l)`; ``"sum"`` gives :math:`J = \sum_{i=1}^{l} j(x_i)`.  Terms
start at :math:`i = 1` because the velocity held in the state :math:`x_i = (h_i, u_i)` is the one solved during step
:math:`i-1` (at :math:`h_{i-1}`); :math:`u_0` is only the first Picard guess (docs/model.md, section 6).

Forms are built once per functional and assembled at each call (new forms per step leak memory: docs/model.md, section 1).
Firedrake is imported when a functional is built, so that the names can be checked before (``icesheet gradient``).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FUNCTIONALS", "WHEN", "DEFAULT_SIGMA", "Functional", "build_functional", "density",
           "initial_velocity_observations"]

FUNCTIONALS = ("volume", "vaf", "misfit")
WHEN = ("final", "sum")
#: default observation error sigma of the velocity misfit, m/yr
DEFAULT_SIGMA = 10.0


def density(model, name: str, observed_velocity=None, sigma: float = DEFAULT_SIGMA):
    """The UFL integrand of functional ``name`` on ``model``'s state Functions (see the module docstring)."""
    import firedrake as fd

    from icesheet import physics

    if name == "volume":
        return model.thickness
    if name == "vaf":
        return physics.thickness_above_flotation(model.thickness, model.bed, rho_water=model.water_density)
    if name == "misfit":
        if observed_velocity is None:
            raise ValueError("functional = 'misfit': observed_velocity (a velocity Function, m/yr) is required")
        if not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"sigma = {sigma!r}: the observation error must be a number > 0 (m/yr)")
        difference = model.velocity - observed_velocity
        return 0.5 * fd.inner(difference, difference) / fd.Constant(sigma) ** 2
    raise ValueError(f"functional = {name!r}: unknown; choose one of {', '.join(FUNCTIONALS)}")


@dataclass(frozen=True)
class Functional:
    """``j_i`` for the checkpoint manager: ``form`` assembled at ``i = steps`` (``when="final"``) or at every
    ``i >= 1`` (``when="sum"``), ``None`` otherwise.  ``form`` is built on the model's state Functions, which are
    the ``state`` the manager passes (holding ``x_i``), so the argument itself is not needed."""

    name: str
    form: object
    steps: int
    when: str = "final"

    def __post_init__(self):
        if self.when not in WHEN:
            raise ValueError(f"when = {self.when!r}: choose one of {', '.join(WHEN)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps = {self.steps!r}: must be an integer >= 1")

    def has_term(self, index: int) -> bool:
        return index == self.steps if self.when == "final" else 1 <= index <= self.steps

    def __call__(self, index: int, state):
        """``j_index`` as an AdjFloat (taped when pyadjoint annotates), or None."""
        from firedrake import assemble

        return assemble(self.form) if self.has_term(index) else None


def build_functional(model, name: str, steps: int, when: str = "final", observed_velocity=None,
                     sigma: float = DEFAULT_SIGMA) -> Functional:
    """The functional ``name`` (one of :data:`FUNCTIONALS`) of ``model`` over a run of ``steps`` steps."""
    import firedrake as fd
    import firedrake.adjoint  # noqa: F401  (registers pyadjoint's overloads: assemble then returns an AdjFloat)

    return Functional(name, density(model, name, observed_velocity, sigma) * fd.dx, steps, when)


def initial_velocity_observations(model):
    """Synthetic observations for the misfit: the velocity solved at the model's current (initial) thickness, as
    a new Function (not taped; the model's state is left as it was).  With them the misfit measures how far the
    velocity drifts from a survey at ``t = 0``."""
    from pyadjoint import stop_annotating

    with stop_annotating():
        guess = model.velocity.copy(deepcopy=True)
        model.solve_velocity()
        observed = model.velocity.copy(deepcopy=True)
        observed.rename("observed_velocity")
        model.velocity.assign(guess)
    return observed
