"""Reward over-optimization: the gold score and the proxy against the KL from the init.

An RL run that optimizes a learned reward (the chat task's ``reward="rm"``) drives its
proxy up while the gold score it stands for rises, peaks and falls (Gao et al. 2023,
"Scaling Laws for Reward Model Overoptimization", who plot both against
``sqrt(KL)``). A run's learning curve (the ``curve`` of a ``train grpo`` manifest: one
point per dev eval with ``dev_gold``, ``dev_return`` and ``kl``, nats per episode) is
all this module reads; it imports neither torch nor the env, so a plot script can use it
anywhere.

>>> curve = [
...     {"iteration": 0, "kl": 0.0, "dev_gold": 0.30, "dev_return": 0.30},
...     {"iteration": 10, "kl": 4.0, "dev_gold": 0.50, "dev_return": 0.55},
...     {"iteration": 20, "kl": 16.0, "dev_gold": 0.35, "dev_return": 0.70},
... ]
>>> summary = overoptimization_summary(curve)
>>> summary["peak_kl"], summary["peak_gold"], summary["final_gold"], summary["gold_drop"]
(4.0, 0.5, 0.35, 0.15)
>>> summary["proxy_rose_after_peak"], summary["overoptimized"]
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["X_AXES", "overoptimization_summary", "plot_overoptimization", "read_curve"]

#: How the KL is drawn on the x axis: its square root (Gao et al.) or as it is.
X_AXES = ("sqrt_kl", "kl")

Curve = Sequence[Mapping[str, Any]]


def _points(curve: Curve, keys: Sequence[str]) -> list[Mapping[str, Any]]:
    """The points of ``curve`` that have a number for every key, in curve order."""
    return [p for p in curve if all(isinstance(p.get(k), (int, float)) for k in keys)]


def overoptimization_summary(
    curve: Curve, gold: str = "dev_gold", proxy: str = "dev_return", kl: str = "kl"
) -> dict[str, Any]:
    """Where a run's gold score peaked, and what it and the proxy did after.

    ``curve``: the run's points in training order; those lacking ``gold``, ``proxy`` or
    ``kl`` are skipped. The peak is the first point of highest gold. Returns the peak's
    ``peak_iteration``, ``peak_kl``, ``peak_gold`` and ``peak_proxy``; the last point's
    ``final_kl``, ``final_gold`` and ``final_proxy``; ``gold_drop`` (peak minus final,
    >= 0); ``proxy_rose_after_peak``: whether the proxy ended above its value at the peak;
    ``overoptimized``: gold fell after its peak while the proxy rose.

    >>> s = overoptimization_summary([{"kl": 0.0, "dev_gold": 0.2, "dev_return": 0.2},
    ...                               {"kl": 1.0, "dev_gold": 0.4, "dev_return": 0.5}])
    >>> s["peak_kl"], s["gold_drop"], s["overoptimized"]
    (1.0, 0.0, False)
    >>> overoptimization_summary([{"kl": 0.0}])
    Traceback (most recent call last):
    ...
    ValueError: the curve has no point with dev_gold, dev_return and kl
    """
    points = _points(curve, (gold, proxy, kl))
    if not points:
        raise ValueError(f"the curve has no point with {gold}, {proxy} and {kl}")
    peak = max(range(len(points)), key=lambda j: (points[j][gold], -j))
    top, last = points[peak], points[-1]
    drop = round(top[gold] - last[gold], 12)  # 0.5 - 0.35 prints as 0.15
    rose = last[proxy] > top[proxy]
    return {
        "peak_iteration": top.get("iteration"),
        "peak_kl": float(top[kl]),
        "peak_gold": float(top[gold]),
        "peak_proxy": float(top[proxy]),
        "final_kl": float(last[kl]),
        "final_gold": float(last[gold]),
        "final_proxy": float(last[proxy]),
        "gold_drop": drop,
        "proxy_rose_after_peak": rose,
        "overoptimized": drop > 0 and rose,
    }


def read_curve(checkpoint: str | Path) -> list[dict[str, Any]]:
    """The ``curve`` of a checkpoint's ``manifest.json`` (a directory or the file)."""
    import json

    path = Path(checkpoint)
    path = path / "manifest.json" if path.is_dir() else path
    return list(json.loads(path.read_text())["curve"])


def plot_overoptimization(
    runs: Mapping[str, Curve],
    path: str | Path,
    x: str = "sqrt_kl",
    gold: str = "dev_gold",
    proxy: str = "dev_return",
    kl: str = "kl",
    title: str = "",
) -> Path:
    """Draw gold (solid) and proxy (dashed) against the KL from the init, one colour per
    run (e.g. ``{"beta=0.02": curve, ...}``, one per KL coefficient), and save a PNG.

    ``x="sqrt_kl"`` (default) puts ``sqrt(KL)`` on the x axis, as Gao et al. do; ``"kl"``
    the KL itself (nats per episode). A small negative KL (the sampled estimate of a
    policy that barely moved) is drawn at 0. Returns ``path``.
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {X_AXES}, got {x!r}")
    if not runs:
        raise ValueError("no runs to plot")
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.get_cmap("viridis")
    for k, (label, curve) in enumerate(runs.items()):
        points = _points(curve, (gold, proxy, kl))
        if not points:
            raise ValueError(f"run {label!r}: no point with {gold}, {proxy} and {kl}")
        xs = [max(float(p[kl]), 0.0) for p in points]
        xs = [math.sqrt(v) for v in xs] if x == "sqrt_kl" else xs
        colour = colours(k / max(len(runs) - 1, 1) * 0.9)
        ax.plot(xs, [p[gold] for p in points], "-o", color=colour, label=label, markersize=3)
        ax.plot(xs, [p[proxy] for p in points], "--", color=colour, markersize=3)
    style = [
        Line2D([], [], color="grey", linestyle="-", label=f"gold ({gold})"),
        Line2D([], [], color="grey", linestyle="--", label=f"proxy ({proxy})"),
    ]
    first = ax.legend(loc="upper left", fontsize="small", title="run")
    ax.add_artist(first)
    ax.legend(handles=style, loc="lower right", fontsize="small")
    ax.set_xlabel(
        "sqrt(KL from init), sqrt(nats per episode)"
        if x == "sqrt_kl"
        else "KL from init, nats per episode"
    )
    ax.set_ylabel("dev score")
    ax.set_title(title or "gold and proxy against KL")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)
    return path
