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
        """Forget the history (the next :meth:`mix` is a plain fixed-point step) and release its arrays."""
        self._last_f = self._last_g = None
        self._df = self._dg = None  # (depth, n): the differences by slot (zeros where unused), allocated at the first
        self._slots: list[int] = []  # the slots in use, oldest first
        self._gram = np.zeros((self.depth, self.depth))  # inner products of the differences, by slot

    def _sum(self, value):
        return value if self.comm is None else self.comm.allreduce(value)

    def mix(self, u: np.ndarray, g: np.ndarray) -> np.ndarray:
        r"""The next iterate from the current one ``u`` and its image ``g = G(u)`` (flat arrays, not modified).

        The Gram matrix :math:`\Delta F_k^T\Delta F_k` is updated, not rebuilt: a new difference costs its inner
        products with the ones held (one row), summed over ranks together with :math:`\Delta F_k^T f_k`."""
        f = g - u
        if self._last_f is not None and self.depth > 0:
            if self._df is None:
                self._df, self._dg = np.zeros((self.depth, f.size)), np.zeros((self.depth, f.size))
            slot = self._slots.pop(0) if len(self._slots) == self.depth else \
                next(i for i in range(self.depth) if i not in self._slots)
            np.subtract(f, self._last_f, out=self._df[slot])
            np.subtract(g, self._last_g, out=self._dg[slot])
            self._slots.append(slot)
            products = self._sum(np.stack([self._df @ self._df[slot], self._df @ f]))
            self._gram[slot, :] = self._gram[:, slot] = products[0]
            rhs = products[1]
        self._last_f, self._last_g = f, g.copy()
        while self._slots:
            gram = self._gram[np.ix_(self._slots, self._slots)]
            if np.linalg.cond(gram) <= self.max_condition:
                coefficients = np.zeros(self.depth)
                coefficients[self._slots] = np.linalg.solve(gram, rhs[self._slots])
                return g - coefficients @ self._dg
            self._slots.pop(0)
        return g.copy()
