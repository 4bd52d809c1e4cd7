"""The over-optimization study's figure: best-of-n and RL curves against ``sqrt(KL)``.

One PNG, a panel per kind of curve (best-of-n: ``d = sqrt(KL_bon)``, nats per reply; RL:
``d = sqrt`` of the measured KL, nats per episode: the units differ, so the panels do not
share an x axis). In each panel, one colour per curve: gold as filled points with the
fitted form of its kind drawn over them (solid; points joined by a solid line where no
fit exists), and the proxy as its gain over the curve's start (dashed, hollow points, on
the right axis: proxies' scales differ, their gains share one axis).
:func:`figure_series` is what is drawn (tests compare it rather than PNG bytes);
:func:`study_png` draws it on a fixed-size Agg canvas.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from leaderboard.overopt_fits import fitted_gain
from leaderboard.overopt_verdicts import fit_curve

__all__ = ["FIGURE_CAPTION", "PANELS", "figure_series", "study_png"]

#: Panel titles and x-axis labels per kind of curve, in drawing order.
PANELS = {
    "bon": ("best-of-n over the start", "d = sqrt(KL_bon), sqrt(nats per reply)"),
    "rl": ("RL from the start", "d = sqrt(measured KL), sqrt(nats per episode)"),
}
#: A panel whose curves reach a larger d is drawn linear up to d = 1, logarithmic beyond.
WIDE_D = 5.0
FIGURE_CAPTION = (
    "Gold (solid: points and the fitted form of their kind) and the proxy's gain over the "
    "curve's start (dashed, right axis) against d = sqrt(KL), one colour per curve; "
    "best-of-n on the left (analytic KL_bon, per reply), RL on the right (measured KL, per "
    "episode; linear up to d = 1 and logarithmic beyond where runs drift far)."
)


def figure_series(study: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What :func:`study_png` draws, per curve in the study's order: ``label``, ``kind``,
    ``colour`` (its index), ``d``, ``gold``, ``proxy_gain`` (proxy minus the start's) and
    ``fit_d``/``fit_gold`` (the fitted gold on 100 points from 0 to the largest ``d``;
    None without a fit)."""
    from leaderboard.overopt_study import usable_points

    series = []
    for colour, (label, curve) in enumerate(study["curves"].items()):
        points = usable_points(curve["points"])
        d = [float(np.sqrt(max(float(p["kl"]), 0.0))) for p in points]
        gold = [float(p["dev_gold"]) for p in points]
        proxy = [float(p["dev_return"]) for p in points]
        row = fit_curve(curve)
        fit_d = fit_gold = None
        if row["alpha"] is not None:
            grid = np.linspace(0.0, row["d_max"], 100)
            gain = fitted_gain(grid, row["alpha"], row["beta"], curve["kind"])
            fit_d, fit_gold = grid.tolist(), (gold[0] + gain).tolist()
        series.append(
            {
                "label": label,
                "kind": curve["kind"],
                "colour": colour,
                "d": d,
                "gold": gold,
                "proxy_gain": [v - proxy[0] for v in proxy],
                "fit_d": fit_d,
                "fit_gold": fit_gold,
            }
        )
    return series


def study_png(study: Mapping[str, Any], title: str = "") -> bytes:
    """PNG bytes of the study's figure (module docstring), 10 x 5 inches at 100 dpi."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    series = figure_series(study)
    kinds = [k for k in PANELS if any(s["kind"] == k for s in series)]
    fig = Figure(figsize=(10, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    palette = colormaps["tab10"]
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    rights: list[Any] = []
    for ax, kind in zip(axes, kinds, strict=True):
        right = ax.twinx()
        if rights:
            right.sharey(rights[0])  # the proxies' gains on one scale in both panels
        rights.append(right)
        handles = []
        for s in (s for s in series if s["kind"] == kind):
            colour = palette(s["colour"] % 10)
            ax.plot(s["d"], s["gold"], "o", color=colour, markersize=4)
            if s["fit_d"] is None:
                ax.plot(s["d"], s["gold"], "-", color=colour, linewidth=1.2)
            else:
                ax.plot(s["fit_d"], s["fit_gold"], "-", color=colour, linewidth=1.4)
            right.plot(s["d"], s["proxy_gain"], "--", color=colour, linewidth=1.0)
            right.plot(s["d"], s["proxy_gain"], "o", color=colour, mfc="none", markersize=4)
            handles.append(Line2D([], [], color=colour, marker="o", label=s["label"]))
        handles += [
            Line2D([], [], color="grey", linestyle="-", label="gold (left)"),
            Line2D([], [], color="grey", linestyle="--", label="proxy gain (right)"),
        ]
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
            ncol=2,
            fontsize=8,
            frameon=False,
        )
        name, xlabel = PANELS[kind]
        if max((max(s["d"]) for s in series if s["kind"] == kind), default=0.0) > WIDE_D:
            # runs that drift far (d of 10-20) would squeeze the rise near d = 1 into a
            # corner: linear up to d = 1, logarithmic beyond
            ax.set_xscale("symlog", linthresh=1.0, linscale=1.0)
            xlabel += "; log scale beyond 1"
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        right.set_ylabel("proxy minus its start", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("dev gold (hidden judge)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
