"""L-BFGS for smooth unconstrained minimisation, in numpy (training only).

scipy's L-BFGS-B (C code since scipy 1.15) spent ~25 ms of its own per iteration on a
150-label head's 58k parameters, as long as the loss itself took, and ~30 ms on the lexical
model's 770k; this two-loop recursion with a backtracking (Armijo) line search costs a few
vector operations of that size. The problems here are convex, so no Wolfe search is needed:
a pair that breaks the curvature condition is skipped, never stored.

The memory, gradients and directions are float32 (the objective's own precision, see
`labelloop.ml.softmax`): every iteration streams the memory twice, and in float64 that was
most of an iteration's time on the lexical model's 770k parameters. The iterate stays float64:
near a solution a step is a thousandth of the weights, and a step taken as a float32
difference lost enough digits to double a warm start's iterations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ARMIJO = 1e-4
MIN_STEP = 1e-12


@dataclass(frozen=True)
class Result:
    x: np.ndarray
    fun: float
    n_iter: int
    n_evals: int
    converged: bool


def minimize(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, *,
             gtol: float, rel_gtol: float = 0.0, max_iter: int = 1000,
             memory: int = 10) -> Result:
    """Minimise `fun` (returning the value and the gradient) from `x0` until the gradient's
    largest component is at most `gtol` and its norm at most `rel_gtol` times the norm at `x0`
    (a warm start begins near a solution, where `gtol` alone would accept the start as it is).
    """
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x.astype(np.float32))
    evals = 1
    norm_target = rel_gtol * float(np.linalg.norm(g)) if rel_gtol > 0 else np.inf

    def done(g: np.ndarray) -> bool:
        return float(np.abs(g).max()) <= gtol and float(np.linalg.norm(g)) <= norm_target

    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    for it in range(max_iter):
        if done(g):
            return Result(x, f, it, evals, True)
        d = -_two_loop(g, pairs)
        slope = float(g @ d)
        if slope >= 0:  # the memory went stale: start over from steepest descent
            pairs.clear()
            d, slope = -g, -float(g @ g)
        step = 1.0 if pairs else min(1.0, 1.0 / max(float(np.linalg.norm(g)), 1e-12))
        while True:
            x_new = x + step * d
            f_new, g_new = fun(x_new.astype(np.float32))
            evals += 1
            if f_new <= f + ARMIJO * step * slope:
                break
            # The minimiser of the quadratic through f, the slope and f_new, kept within
            # [0.1, 0.5] of the step tried.
            curve = f_new - f - slope * step
            guess = -slope * step * step / (2 * curve) if curve > 0 else 0.5 * step
            step = min(max(guess, 0.1 * step), 0.5 * step)
            if step < MIN_STEP:  # no decrease left at this precision: as good as it gets
                return Result(x, f, it, evals, True)
        s, y = (x_new - x).astype(np.float32), g_new - g
        sy = float(s @ y)
        if sy > 1e-10 * float(y @ y):
            pairs.append((s, y, 1.0 / sy))
        x, f, g = x_new, f_new, g_new
    return Result(x, f, max_iter, evals, done(g))


def _two_loop(g: np.ndarray, pairs) -> np.ndarray:
    """The inverse-Hessian estimate times g (Nocedal & Wright, algorithm 7.4)."""
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        q -= np.float32(a) * y
        alphas.append(a)
    if pairs:
        s, y, _ = pairs[-1]
        q *= np.float32(float(s @ y) / float(y @ y))
    for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
        q += np.float32(a - rho * float(y @ q)) * s
    return q
