"""``python -m bench.speedup``: the adaptive-speedup solver against a generic constrained solver.

The same problems (a step-shaped V(t) like a video with calm and busy stretches, target rate 2,
alpha 50) solved by ``jobs.speed.solver.smooth_speedup`` and by SciPy's SLSQP on the same energy,
bounds and rate constraint (the baseline a user would reach for), side by side: seconds, the
energy each reaches (ours minus SLSQP's, negative is better) and how far each is from the rate.
SLSQP is dense (cubic in frames per iteration), so it runs up to ``--baseline-max`` frames (250, ten
seconds of video, already takes minutes) only.
Last line: ``solve_ms=<ours at the largest size> baseline_ratio=<SLSQP s / ours s at its largest size>
energy_gap=<max of ours - SLSQP>``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy.optimize import minimize

from jobs.speed.solver import overall_rate, smooth_speedup


def problem(frames: int, seed: int = 0) -> np.ndarray:
    """V(t): stretches of 1 to 6 s at 25 fps, each at a random 1.25^i."""
    rng = np.random.default_rng(seed)
    V = np.empty(frames)
    t = 0
    while t < frames:
        n = int(rng.integers(25, 150))
        V[t : t + n] = 1.25 ** rng.integers(0, 11)
        t += n
    return V


def energy(u: np.ndarray, V: np.ndarray, alpha: float) -> float:
    return float(np.sum((u - 1 / V) ** 2) + alpha * np.sum(np.diff(u) ** 2))


def slsqp(V: np.ndarray, rate: float, alpha: float) -> np.ndarray:
    n, s_max = len(V), max(V.max(), rate)

    def grad(u):
        g = 2 * (u - 1 / V)
        d = np.diff(u)
        g[:-1] -= 2 * alpha * d
        g[1:] += 2 * alpha * d
        return g

    res = minimize(
        lambda u: energy(u, V, alpha),
        np.full(n, 1 / rate),
        jac=grad,
        method="SLSQP",
        bounds=[(1 / s_max, 1.0)] * n,
        options={"ftol": 1e-12, "maxiter": 2000},
        constraints=[{"type": "eq", "fun": lambda u: u.sum() - n / rate, "jac": lambda u: np.ones(n)}],
    )
    return 1 / res.x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speedup", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="250,2500,25000,250000", help="frames per problem")
    p.add_argument("--baseline-max", type=int, default=250, help="largest problem given to SLSQP")
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=50.0)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'frames':>8} {'ours s':>9} {'SLSQP s':>9} {'ratio':>8} {'energy ours-SLSQP':>18} "
        f"{'rate err ours':>14} {'rate err SLSQP':>15}"
    )
    ours_ms, ratio, gap = 0.0, float("nan"), -np.inf
    for n in sizes:
        V = problem(n)
        start = time.perf_counter()
        S = smooth_speedup(V, args.rate, args.alpha)
        ours = time.perf_counter() - start
        ours_ms = ours * 1000
        line = f"{n:>8} {ours:>9.4f}"
        if n <= args.baseline_max:
            start = time.perf_counter()
            B = slsqp(V, args.rate, args.alpha)
            base = time.perf_counter() - start
            ratio = base / ours
            g = energy(1 / S, V, args.alpha) - energy(1 / B, V, args.alpha)
            gap = max(gap, g)
            line += (
                f" {base:>9.3f} {ratio:>8.0f} {g:>18.2e} {abs(overall_rate(S) / args.rate - 1):>14.1e}"
                f" {abs(overall_rate(B) / args.rate - 1):>15.1e}"
            )
        else:
            line += f" {'-':>9} {'-':>8} {'-':>18} {abs(overall_rate(S) / args.rate - 1):>14.1e} {'-':>15}"
        print(line, flush=True)
    print(f"solve_ms={ours_ms:.1f} baseline_ratio={ratio:.0f} energy_gap={gap:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
