r"""Anderson mixing of a fixed-point iteration :math:`u_{k+1} = G(u_k)` (Anderson 1965, J. ACM 12; Walker & Ni 2011,
SIAM J. Numer. Anal. 49, Algorithm AA and its difference form, section 4).

With the fixed-point residuals :math:`f_k = G(u_k) - u_k`, a depth :math:`m` and :math:`m_k = \min(m, k)`, the
differences :math:`\Delta F_k = [f_{k-m_k+1} - f_{k-m_k}, \dots, f_k - f_{k-1}]` and likewise :math:`\Delta G_k` of
the :math:`G(u_i)`, AA(m) takes

.. math::
    \gamma_k = \arg\min_\gamma \|f_k - \Delta F_k\gamma\|_2, \qquad u_{k+1} = G(u_k) - \Delta G_k\gamma_k

(undamped, :math:`\beta = 1`).  For a linear map :math:`G` this is GMRES applied to :math:`(I - G)u = b` in
disguise (Walker & Ni 2011, Theorem 2.2), which is the property the tests check.  The small least-squares problem is
solved through its normal equations, whose :math:`m\times m` Gram matrix is summed over MPI ranks (each rank holds
its owned entries); the oldest difference is dropped while that matrix is ill-conditioned (condition number above
``max_condition``), as Walker & Ni do with their QR factorisation.  Plain numpy; no Firedrake here.
"""
from __future__ import annotations

import numpy as np

__all__ = ["AndersonMixing"]


class AndersonMixing:
    """AA(``depth``) on flat arrays of this rank's entries; ``comm`` (an mpi4py communicator, or None for one
    process) sums the inner products over ranks.  Call :meth:`mix` once per iteration; :meth:`reset` between solves."""

    def __init__(self, depth: int, comm=None, max_condition: float = 1.0e14):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"anderson depth = {depth!r}: must be an integer >= 0 (0: plain fixed-point iteration)")
        self.depth = depth
        self.comm = comm
        self.max_condition = max_condition
        self.reset()

    def reset(self) -> None:
        """Forget the history (the next :meth:`mix` is a plain fixed-point step)."""
        self._last_f = self._last_g = None
        self._df: list[np.ndarray] = []
        self._dg: list[np.ndarray] = []

    def _sum(self, value):
        return value if self.comm is None else self.comm.allreduce(value)

    def mix(self, u: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The next iterate from the current one ``u`` and its image ``g = G(u)`` (flat arrays, not modified)."""
        f = g - u
        if self._last_f is not None and self.depth > 0:
            self._df.append(f - self._last_f)
            self._dg.append(g - self._last_g)
            if len(self._df) > self.depth:
                del self._df[0], self._dg[0]
        self._last_f, self._last_g = f.copy(), g.copy()
        while self._df:
            df = np.array(self._df)
            gram = self._sum(df @ df.T)
            rhs = self._sum(df @ f)
            if np.linalg.cond(gram) <= self.max_condition:
                gamma = np.linalg.solve(gram, rhs)
                return g - np.array(self._dg).T @ gamma
            del self._df[0], self._dg[0]
        return g.copy()
