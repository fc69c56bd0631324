"""The Rosenbrock tableaus of the batch path (her2sim.solvers.tableaus) satisfy their order conditions.

The tableaus are stored in Hairer & Wanner's transformed form (a, c, m, gamma; Solving ODEs II,
1996, IV.7, eq. 7.25). Undoing the transformation, Gamma = (I/gamma - C)^-1, alpha = A Gamma,
b = m Gamma, gives the classical coefficients, whose order conditions up to order 4 are those of
Hairer & Wanner's Table IV.7.1 (rooted trees; beta = alpha + Gamma off the diagonal). The
embedded method (weights m - e) must meet them up to its error order and fail at the next
(else the error estimate would vanish on smooth problems). Pure arithmetic: milliseconds.
"""

import numpy as np
import pytest

from her2sim.solvers.tableaus import TABLEAUS, auto_method


def classical(tab, weights):
    s = tab.stages
    A, C = np.zeros((s, s)), np.zeros((s, s))
    for i in range(s):
        A[i, :i] = tab.a[i][:i]
        C[i, :i] = tab.c[i][:i]
    G = np.linalg.inv(np.eye(s) / tab.gamma - C)  # Gamma, lower triangular with gamma on the diagonal
    alpha = A @ G
    beta = alpha + G - tab.gamma * np.eye(s)      # beta_ij = alpha_ij + gamma_ij, j < i
    return alpha, beta, np.asarray(weights, dtype=float) @ G


def residuals(tab, weights):
    """{order: [residuals of that order's conditions]}, orders 1-4 (Hairer & Wanner, Table IV.7.1)."""
    al, be, b = classical(tab, weights)
    g = tab.gamma
    a1, b1 = al.sum(axis=1), be.sum(axis=1)       # alpha_i, beta'_i
    ab = al @ b1                                    # sum_k alpha_jk beta'_k
    bb = be @ b1                                    # sum_k beta_jk beta'_k
    return {
        1: [b.sum() - 1],
        2: [b @ b1 - (0.5 - g)],
        3: [b @ a1**2 - 1 / 3, b @ bb - (1 / 6 - g + g**2)],
        4: [b @ a1**3 - 1 / 4, b @ (a1 * ab) - (1 / 8 - g / 3), b @ (be @ a1**2) - (1 / 12 - g / 3),
            b @ (be @ bb) - (1 / 24 - g / 2 + 1.5 * g**2 - g**3)],
    }


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_method_and_embedded_method_meet_their_order_conditions(name):
    tab = TABLEAUS[name]
    res = residuals(tab, tab.m)
    for p in range(1, min(tab.order, 4) + 1):  # order 5 (Rodas5P's) is checked by convergence (test_batch)
        assert np.max(np.abs(res[p])) < 1e-10, (name, p, res[p])
    emb = residuals(tab, np.subtract(tab.m, tab.e))
    for p in range(1, min(tab.error_order, 4) + 1):
        assert np.max(np.abs(emb[p])) < 1e-10, (name, "embedded", p, emb[p])
    if tab.error_order + 1 <= 4:  # the estimate is of the right order: it does not vanish one order higher
        assert np.max(np.abs(np.subtract(res[tab.error_order + 1], emb[tab.error_order + 1]))) > 1e-6


def test_auto_method_is_a_known_tableau_for_every_tolerance():
    for rtol in (1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10):
        assert auto_method(rtol) in TABLEAUS
