"""Gao et al.'s functional forms of reward over-optimization, fitted by least squares.

Gao, Schulman, Hilton 2023 ("Scaling Laws for Reward Model Overoptimization") write the
gold score's gain over the initial policy as a function of ``d = sqrt(KL(pi || pi_init))``:

    best-of-n:  gain(d) = d * (alpha - beta * d)
    RL:         gain(d) = d * (alpha - beta * log d)

Both are linear in ``(alpha, beta)``, so an ordinary least-squares fit on the points
``(d_i, gold_i - gold_0)`` finds them exactly (:func:`fit_overoptimization`; ``gold_0``
is the gold score of the initial policy, the curve's point at ``d = 0``). From the fit:
the ``d`` at which gold peaks (``alpha / (2 beta)`` for best-of-n, ``exp(alpha / beta -
1)`` for RL), the gold there, and the gold lost after it up to the largest ``d`` measured.
A fit with ``beta <= 0`` has no peak: gold rises (or falls) with ``d`` throughout.

This module imports neither torch nor the env.

>>> ds = [0.0, 0.5, 1.0, 1.5, 2.0]
>>> fit = fit_overoptimization(ds, [0.3 + d * (0.4 - 0.2 * d) for d in ds], form="bon")
>>> round(fit["alpha"], 6), round(fit["beta"], 6), round(fit["d_peak"], 6)
(0.4, 0.2, 1.0)
>>> round(fit["gold_peak"], 6), round(fit["gold_lost"], 6)
(0.5, 0.2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["FORMS", "fit_overoptimization", "fitted_gain"]

#: The functional forms: ``"bon"`` (best-of-n) and ``"rl"``.
FORMS = ("bon", "rl")


def _d_log_d(d: np.ndarray) -> np.ndarray:
    """``d * log d``, 0 at ``d = 0`` (its limit)."""
    d = np.asarray(d, dtype=float)
    return np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)


def fitted_gain(d: Sequence[float] | np.ndarray, alpha: float, beta: float, form: str) -> Any:
    """The form's gain at ``d``: ``d (alpha - beta d)`` or ``d (alpha - beta log d)``.

    >>> float(fitted_gain(2.0, 1.0, 0.25, "bon")), float(fitted_gain(0.0, 1.0, 0.5, "rl"))
    (1.0, 0.0)
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    d = np.asarray(d, dtype=float)
    return alpha * d - beta * (d * d if form == "bon" else _d_log_d(d))


def _peak(alpha: float, beta: float, form: str) -> float | None:
    """The ``d > 0`` where the gain peaks, or None when it has no maximum there."""
    if not beta > 0:
        return None
    if form == "bon":
        return alpha / (2 * beta) if alpha > 0 else None
    return math.exp(alpha / beta - 1)  # d/dd of d (a - b log d) = a - b (log d + 1)


def fit_overoptimization(
    d: Sequence[float],
    gold: Sequence[float],
    form: str,
    baseline: float | None = None,
) -> dict[str, Any]:
    """Least-squares ``alpha`` and ``beta`` of ``form`` on the points ``(d, gold)``.

    ``baseline``: the initial policy's gold (default: the gold of the point of smallest
    ``d``, which should be 0). Returns ``alpha``, ``beta``, ``baseline``, ``rmse`` (of the
    fitted gold), ``d_peak`` and ``gold_peak`` (None without a peak), ``d_max`` (the
    largest ``d`` measured) and ``gold_lost``: the fitted gold at the peak minus at
    ``d_max`` (0 when the peak lies beyond ``d_max`` or there is none).

    >>> fit = fit_overoptimization([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4], "bon")
    >>> round(fit["alpha"], 6), abs(round(fit["beta"], 6)), fit["d_peak"], fit["gold_lost"]
    (0.1, 0.0, None, 0.0)
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    d = np.asarray(d, dtype=float)
    gold = np.asarray(gold, dtype=float)
    if d.shape != gold.shape or d.ndim != 1:
        raise ValueError(f"d and gold must be equal-length lists, got {d.shape} and {gold.shape}")
    if np.any(d < 0) or not np.all(np.isfinite(d)) or not np.all(np.isfinite(gold)):
        raise ValueError("d must be finite and >= 0 (sqrt of a KL), gold finite")
    if np.count_nonzero(d > 0) < 2:
        raise ValueError("a fit needs at least two points with d > 0")
    base = float(gold[np.argmin(d)]) if baseline is None else float(baseline)
    columns = np.stack([d, -(d * d if form == "bon" else _d_log_d(d))], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(columns, gold - base, rcond=None)
    alpha, beta = float(alpha), float(beta)
    residual = gold - base - fitted_gain(d, alpha, beta, form)
    d_max = float(d.max())
    d_peak = _peak(alpha, beta, form)
    gold_peak = None if d_peak is None else base + float(fitted_gain(d_peak, alpha, beta, form))
    lost = 0.0
    if d_peak is not None and d_peak < d_max:
        lost = gold_peak - (base + float(fitted_gain(d_max, alpha, beta, form)))
    return {
        "form": form,
        "alpha": alpha,
        "beta": beta,
        "baseline": base,
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "d_peak": d_peak,
        "gold_peak": gold_peak,
        "d_max": d_max,
        "gold_lost": lost,
    }
