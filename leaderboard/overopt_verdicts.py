"""What the over-optimization study's curves say: a fit per curve and three statements.

Each curve of a study (:mod:`leaderboard.overopt_study`) is fitted with Gao et al.'s form
of its kind (:func:`fit_curve`: best-of-n ``d (alpha - beta d)``, RL ``d (alpha - beta
log d)``, ``d = sqrt(KL)``, least squares on the gold gain over the start), and the study
is read for three statements, each computed, never written by hand:

- :func:`frontier_verdicts`: did the KL coefficient move the gold-vs-``d`` frontier, or
  only stop the run earlier? (Gao et al.: a KL penalty acts like early stopping.)
- :func:`ensemble_verdicts`: did an ensemble of proxies push the gold peak out to a
  larger ``d`` than each of its members? (Coste et al. 2024.)
- :func:`done_when`: issue 27's test: for some proxy best-of-n's gold rises above its
  ``n = 1`` point and then falls below its peak at a larger ``n``; and an RL run's gold
  rises above its start and then falls while its proxy still rises.

**The noise rule.** Two gold values differ when their difference exceeds ``Z = 2``
standard errors of a difference (about 95%, two-sided), :func:`difference_se`. Where
both points carry per-context gold (``context_gold``: best-of-n curves of
:mod:`baselines.bon_pool`, every ``n`` measured on the same contexts), the error is
*paired*: the standard error over the contexts of the per-context difference. Else it
is ``sqrt(se_a^2 + se_b^2)``, a point's standard error being its ``dev_gold_se``
(best-of-n curves carry it: over the episodes), else the same over its ``context_gold``
(an RL run's per-episode gold), else the binomial bound
``sqrt(p (1 - p) / N)`` of a mean of scores in ``[0, 1]`` with mean ``p`` over ``N``
dev episodes (the run's ``eval_episodes``): no score in ``[0, 1]`` varies more than a
coin. That unpaired form takes the points as independent, but points of one curve share
their episodes, which makes the true error of a difference smaller: conservative. A proxy
"still rises" when it ends above its value at the gold peak by ``Z`` standard errors
where the curve carries ``dev_return_se``, else by more than ``TOLERANCE`` (0.02; RL
curves carry no proxy error).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from leaderboard.overopt_fits import fit_overoptimization
from leaderboard.overopt_study import rm_name, usable_points

__all__ = [
    "TOLERANCE",
    "Z",
    "done_when",
    "difference_se",
    "ensemble_verdicts",
    "fit_curve",
    "frontier_verdicts",
    "gold_gap",
    "gold_se",
]

#: Standard errors of a difference beyond which two values differ (module docstring).
Z = 2.0
#: How far apart two values must be where their errors are unknown (an RL curve's proxy):
#: about the standard error of a mean score over 100 dev episodes, as
#: :func:`leaderboard.overoptimization.overoptimization_summary` has it.
TOLERANCE = 0.02

Curve = Mapping[str, Any]


def gold_se(curve: Curve) -> list[float | None]:
    """Each usable point's standard error of gold: ``dev_gold_se``, else the standard error
    of the mean of its per-episode gold (``context_gold``, an RL run's point), else the
    binomial bound over the point's ``episodes`` or the curve's ``eval_episodes``; None
    when none is known.

    >>> gold_se({"eval_episodes": 100, "points": [{"kl": 0, "dev_gold": 0.5, "dev_return": 0}]})
    [0.05]
    >>> point = {"kl": 0, "dev_gold": 0.5, "dev_return": 0, "context_gold": [0.4, 0.6] * 50}
    >>> round(gold_se({"eval_episodes": 100, "points": [point]})[0], 6)
    0.01005
    """
    out: list[float | None] = []
    for p in usable_points(curve["points"]):
        if isinstance(p.get("dev_gold_se"), (int, float)):
            out.append(float(p["dev_gold_se"]))
            continue
        per_episode = p.get("context_gold")
        if isinstance(per_episode, list) and len(per_episode) >= 2:
            out.append(_mean_se(np.asarray(per_episode, dtype=float)))
            continue
        n = p.get("episodes") or curve.get("eval_episodes")
        g = min(max(float(p["dev_gold"]), 0.0), 1.0)
        out.append(math.sqrt(g * (1 - g) / n) if n else None)
    return out


def _mean_se(values: np.ndarray) -> float:
    """The standard error of the mean of ``values`` (two or more)."""
    return float(values.std(ddof=1) / math.sqrt(len(values)))


def _paired_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> np.ndarray | None:
    """Per context, point ``a``'s gold minus point ``b``'s, when both carry
    ``context_gold`` over the same number (two or more) of contexts; else None."""
    ga, gb = a.get("context_gold"), b.get("context_gold")
    if not isinstance(ga, list) or not isinstance(gb, list) or len(ga) != len(gb):
        return None
    if len(ga) < 2:
        return None
    return np.asarray(ga, dtype=float) - np.asarray(gb, dtype=float)


def difference_se(
    a: Mapping[str, Any], b: Mapping[str, Any], se_a: float | None, se_b: float | None
) -> tuple[float | None, bool]:
    """The standard error of gold at point ``a`` minus point ``b``, and whether it is
    paired: over the contexts of the per-context difference when both points carry
    ``context_gold`` (module docstring), else ``sqrt(se_a^2 + se_b^2)`` of the points'
    errors (None when one is unknown).

    >>> a = {"context_gold": [0.6, 0.2, 0.9]}
    >>> b = {"context_gold": [0.5, 0.1, 0.8]}
    >>> se, paired = difference_se(a, b, 0.2, 0.2)
    >>> round(se, 12), paired
    (0.0, True)
    >>> difference_se({}, b, 0.3, 0.4)
    (0.5, False)
    """
    diffs = _paired_differences(a, b)
    if diffs is not None:
        return _mean_se(diffs), True
    if se_a is None or se_b is None:
        return None, False
    return math.hypot(se_a, se_b), False


def _differs(a: float, b: float, se: float | None) -> bool:
    """``a - b`` exceeds ``Z`` standard errors of a difference ``se`` (``TOLERANCE`` when
    it is unknown)."""
    if se is None:
        return a - b > TOLERANCE
    return a - b > Z * se


def _series(curve: Curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``d = sqrt(KL)`` (a small negative KL read as 0), gold and proxy of its points."""
    points = usable_points(curve["points"])
    d = np.sqrt(np.maximum([float(p["kl"]) for p in points], 0.0))
    gold = np.array([float(p["dev_gold"]) for p in points])
    proxy = np.array([float(p["dev_return"]) for p in points])
    return d, gold, proxy


def _proxy_rises(curve: Curve, peak: int) -> bool:
    """The proxy ends above its value at point ``peak`` (module docstring's rule)."""
    points = usable_points(curve["points"])
    top, last = points[peak], points[-1]
    se = [p.get("dev_return_se") for p in (last, top)]
    known = all(isinstance(s, (int, float)) for s in se)
    diff_se = math.hypot(*se) if known else None
    return _differs(last["dev_return"], top["dev_return"], diff_se)


def fit_curve(curve: Curve) -> dict[str, Any]:
    """The fit of one curve, in the table's terms.

    Returns ``alpha``, ``beta`` (the fit's; None when there is no fit), ``d_peak`` and
    ``peak_gain`` (the fitted peak's ``d`` and gold gain over the start; None without a
    peak inside the measured range), ``d_max``, ``gold_lost`` (observed: the highest gold
    minus the last point's), ``proxy_rising`` (the proxy ended above its value at the gold
    peak) and ``note``: why a figure is missing (``"too few points (2)"``, ``"no peak
    within d <= 1.78"``, or a peak ``"before the first point, d = 0.44"``: the data
    only fall), else None.

    >>> pts = [{"kl": d * d, "dev_gold": 0.2 + d * (0.3 - 0.1 * d), "dev_return": d}
    ...        for d in (0.0, 0.5, 1.0, 2.0, 3.0)]
    >>> row = fit_curve({"kind": "bon", "points": pts})
    >>> round(row["alpha"], 6), round(row["d_peak"], 6), round(row["peak_gain"], 6)
    (0.3, 1.5, 0.225)
    >>> round(row["gold_lost"], 6), row["proxy_rising"], row["note"]
    (0.2, True, None)
    """
    d, gold, proxy = _series(curve)
    peak = int(np.argmax(gold))  # the first of equal highs
    row: dict[str, Any] = {
        "alpha": None,
        "beta": None,
        "d_peak": None,
        "peak_gain": None,
        "d_max": float(d.max()),
        "gold_lost": float(gold[peak] - gold[-1]),
        "proxy_rising": _proxy_rises(curve, peak),
        "note": None,
    }
    if len(d) < 3 or np.count_nonzero(d > 0) < 2:
        row["note"] = f"too few points ({len(d)})"
        return row
    fit = fit_overoptimization(d, gold, curve["kind"], baseline=float(gold[0]))
    row["alpha"], row["beta"] = fit["alpha"], fit["beta"]
    if fit["d_peak"] is None or fit["d_peak"] > row["d_max"]:
        row["note"] = f"no peak within d <= {row['d_max']:.2f}"
        return row
    row["d_peak"] = fit["d_peak"]
    row["peak_gain"] = fit["gold_peak"] - fit["baseline"]
    first = float(d[d > 0].min())
    if fit["d_peak"] < first:
        row["note"] = f"before the first point, d = {first:.2f}"
    return row


def gold_gap(a: Curve, b: Curve) -> dict[str, Any] | None:
    """Gold of curve ``b`` minus curve ``a`` on their common ``d`` range, each interpolated
    linearly in ``d`` (points sorted by ``d``) at every ``d`` either curve measured there.

    Returns the range (``d_low``, ``d_high``), and, at the ``d`` where the gap stands out
    most from its noise (``|gap| / threshold``): ``d``, ``gap`` and ``threshold`` (``Z``
    standard errors of the difference, each curve's error interpolated too); ``beyond_noise``:
    whether the gap exceeds its threshold there. None when the curves share no range
    beyond a single ``d``, or a curve's noise is unknown.
    """
    series = []
    for curve in (a, b):
        d, gold, _ = _series(curve)
        se = gold_se(curve)
        if any(s is None for s in se):
            return None
        order = np.argsort(d, kind="stable")
        series.append((d[order], gold[order], np.asarray(se, dtype=float)[order]))
    (da, ga, sa), (db, gb, sb) = series
    low, high = max(da[0], db[0]), min(da[-1], db[-1])
    if not high > low:
        return None
    grid = np.unique(np.concatenate([da, db]))
    grid = grid[(grid >= low) & (grid <= high)]
    gap = np.interp(grid, db, gb) - np.interp(grid, da, ga)
    threshold = Z * np.hypot(np.interp(grid, da, sa), np.interp(grid, db, sb))
    at = int(np.argmax(np.abs(gap) / np.maximum(threshold, 1e-12)))
    return {
        "d_low": float(low),
        "d_high": float(high),
        "d": float(grid[at]),
        "gap": float(gap[at]),
        "threshold": float(threshold[at]),
        "beyond_noise": bool(abs(gap[at]) > threshold[at]),
    }


def frontier_verdicts(curves: Mapping[str, Curve]) -> list[dict[str, Any]]:
    """Per proxy with RL runs at two or more KL coefficients: whether ``beta`` moved the
    gold-vs-``d`` frontier (some pair of runs differs beyond noise on their common ``d``
    range, :func:`gold_gap`) or only stopped earlier (no pair does).

    Each verdict: ``proxy``, ``runs`` (``[(label, beta, d_max)]``, by beta), ``pairs``
    (``[(label_a, label_b, gap or None)]``, ``a`` of the smaller beta), ``moved`` (True,
    False, or None when no pair could be compared) and ``largest`` (the pair whose gap
    stood out most from its noise, or None).
    """
    by_proxy: dict[str, list[str]] = {}
    for label, curve in curves.items():
        if curve["kind"] == "rl" and curve.get("beta") is not None:
            by_proxy.setdefault(curve["proxy"], []).append(label)
    verdicts = []
    for proxy, labels in by_proxy.items():
        labels = sorted(labels, key=lambda k: float(curves[k]["beta"]))
        if len({float(curves[k]["beta"]) for k in labels}) < 2:
            continue
        pairs = [
            (a, b, gold_gap(curves[a], curves[b]))
            for i, a in enumerate(labels)
            for b in labels[i + 1 :]
        ]
        gaps = [(a, b, g) for a, b, g in pairs if g is not None]
        largest = max(
            gaps, key=lambda p: abs(p[2]["gap"]) / max(p[2]["threshold"], 1e-12), default=None
        )
        verdicts.append(
            {
                "proxy": proxy,
                "runs": [
                    (k, curves[k]["beta"], float(_series(curves[k])[0].max())) for k in labels
                ],
                "pairs": pairs,
                "moved": None if not gaps else any(g["beyond_noise"] for *_, g in gaps),
                "largest": largest,
            }
        )
    return verdicts


def _peak_d(curve: Curve) -> tuple[float, bool]:
    """The fitted gold peak's ``d``, and whether it lies in the measured range (else
    ``d_max``: the peak, if any, lies beyond it)."""
    row = fit_curve(curve)
    if row["d_peak"] is None:
        return row["d_max"], False
    return row["d_peak"], True


def ensemble_verdicts(curves: Mapping[str, Curve]) -> list[dict[str, Any]]:
    """Per ensemble curve with member curves of the same kind and beta: whether its fitted
    gold peak lies at a larger ``d`` than each member's (a peak beyond the measured range
    counts as larger than one inside it).

    Each verdict: ``label``, ``peak`` (``(d, inside_range)``), ``members`` (``[(label,
    (d, inside_range))]``), ``pushed_out`` (True, False, or None when neither the
    ensemble's nor a member's peak lies in its range: nothing to compare).
    """
    verdicts = []
    for label, curve in curves.items():
        names = {rm_name(p) for p in curve.get("rm", [])}
        if len(names) < 2:
            continue
        members = [
            (other, _peak_d(c))
            for other, c in curves.items()
            if len(c.get("rm", [])) == 1
            and rm_name(c["rm"][0]) in names
            and c["kind"] == curve["kind"]
            and c.get("beta") == curve.get("beta")
        ]
        if not members:
            continue
        (d, inside) = peak = _peak_d(curve)
        outcomes = []
        for _, (dm, inside_m) in members:
            if not inside and not inside_m:
                outcomes.append(None)
            else:
                outcomes.append((not inside and inside_m) or (inside and inside_m and d > dm))
        pushed = None if None in outcomes else all(outcomes)
        verdicts.append({"label": label, "peak": peak, "members": members, "pushed_out": pushed})
    return verdicts


def _rise_and_fall(curve: Curve) -> tuple[dict[str, bool], bool]:
    """Whether gold rose above the start and then fell below its peak, beyond noise; and
    whether every difference tested was paired (:func:`difference_se`)."""
    points = usable_points(curve["points"])
    _, gold, _ = _series(curve)
    se = gold_se(curve)
    peak = int(np.argmax(gold))
    tested = [0, *range(peak + 1, len(gold))]
    errors = {j: difference_se(points[peak], points[j], se[peak], se[j]) for j in tested}
    rose = _differs(gold[peak], gold[0], errors[0][0])
    fell = any(_differs(gold[peak], gold[j], errors[j][0]) for j in tested[1:])
    seen = {"rose": rose, "fell": fell, "proxy_rising": _proxy_rises(curve, peak)}
    return seen, all(paired for _, paired in errors.values())


def done_when(curves: Mapping[str, Curve]) -> dict[str, Any]:
    """Issue 27's "Done when" on the curves: ``bon`` (labels of best-of-n curves whose gold
    rose above the ``n = 1`` point and later fell below its peak), ``rl`` (labels of RL
    runs, the gold control excepted, whose gold rose above the start and then fell while
    the proxy still rose), each beyond noise (module docstring); ``met``: both non-empty;
    ``paired``: the labels of the curves judged with paired errors (:func:`difference_se`).
    """
    bon: list[str] = []
    rl: list[str] = []
    paired: list[str] = []
    for label, curve in curves.items():
        if len(usable_points(curve["points"])) < 3:
            continue
        seen, was_paired = _rise_and_fall(curve)
        if was_paired:
            paired.append(label)
        if curve["kind"] == "bon" and seen["rose"] and seen["fell"]:
            bon.append(label)
        if curve["kind"] == "rl" and curve["proxy"] != "gold" and all(seen.values()):
            rl.append(label)
    return {"bon": bon, "rl": rl, "met": bool(bon and rl), "paired": paired}
