"""The static leaderboard page: tables plus matplotlib plots inlined as base64 PNG.

One self-contained HTML file (no script, no external resource): per episode set the
table (declared entries' rows in italics, ``data-labels`` on every row), the SFT vs RL
verdict, a plot of success with 95% CIs per entry grouped by paradigm, and a plot of
success against training budget (log scale, a panel per budget unit of the board's one
vocabulary: trained tokens, env steps; untrained entries are dashed or dotted horizontal
lines), and,
given the rows' learning curves (:mod:`leaderboard.learning_curves`), their dev measure
against training budget as each trainer recorded it; in the plots a declared entry's
name carries "(declared)". Every name is drawn as plain text (no mathtext: a name holding
``$`` is not a formula) and escaped in the HTML.
"""

from __future__ import annotations

import base64
import functools
import io
import itertools
from collections.abc import Callable
from html import escape

from leaderboard.learning_curves import CURVE_UNITS, MEASURE_KEYS, LearningCurve, SetCurves
from leaderboard.standings import EntryStanding, SetStandings
from leaderboard.store import VERIFIED
from leaderboard.table import columns, set_title, standing_rows, stats_footnote

__all__ = [
    "PARADIGM_COLORS",
    "plot_learning_curves",
    "plot_success_by_paradigm",
    "plot_success_vs_budget",
    "render_html",
]

#: One color per paradigm, the same in every plot.
PARADIGM_COLORS = {
    "reference": "#7f7f7f",
    "sft": "#1f77b4",
    "filtered-sft": "#17becf",
    "rl": "#d62728",
    "sft-rl": "#9467bd",
    "zero-shot": "#2ca02c",
    "best-of-n": "#ff7f0e",
    "modular": "#8c564b",
}

_UNTRAINED_STYLES = ("--", ":", "-.", (0, (5, 2, 1, 2)))
#: Markers that tell apart the curves of one paradigm (they share its color).
_CURVE_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Columns right-aligned as figures.
NUMERIC_COLUMNS = (
    "gold [95% CI]",
    "success [95% CI]",
    "mean return [95% CI]",
    "proxy return [95% CI]",
    "IQM return",
    "turns",
)
#: Budget units with a panel in the budget plot, and their axis labels.
BUDGET_UNITS = {"trained_tokens": "trained tokens", "env_steps": "env steps (all in)"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       color: #222; line-height: 1.4; padding: 0 1rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f4f4f4; }
td.num { font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5rem 1rem 0.5rem 0; }
figcaption { font-size: 0.85rem; color: #555; }
img { max-width: 100%; }
.verdict { font-weight: 600; }
tr[data-labels="declared"] td { color: #555; font-style: italic; }
.note { color: #555; font-size: 0.85rem; }
"""


def _plain_text(plot: Callable[..., bytes]) -> Callable[..., bytes]:
    """``plot`` with every text it draws taken as plain text: no mathtext (a stored name
    such as ``$\\frac{$`` is a name, not a formula that fails to parse) and no TeX."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs) -> bytes:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return plot(*args, **kwargs)

    return wrapper


def _new_figure(width: float = 6.4, height: float = 3.8, panels: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # Agg, whatever backend pyplot would pick
    return fig, [fig.add_subplot(1, panels, i + 1) for i in range(panels)]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _label(entry: EntryStanding) -> str:
    """An entry's name in a plot, marked when its labels are declared."""
    return entry.name if entry.labels == VERIFIED else f"{entry.name} (declared)"


def _paradigm_order(standings: SetStandings) -> list:
    order = list(PARADIGM_COLORS)
    return sorted(
        standings.entries,
        key=lambda e: (
            order.index(e.paradigm) if e.paradigm in order else 99,
            -e.score(standings.ranked_by).estimate,
            e.name,
        ),
    )


def _measure_label(standings: SetStandings) -> str:
    return "gold score" if standings.ranked_by == "gold" else "success rate"


@_plain_text
def plot_success_by_paradigm(standings: SetStandings) -> bytes:
    """PNG: each entry's success with its 95% CI, entries grouped (and colored) by paradigm."""
    fig, (ax,) = _new_figure()
    x, previous = 0.0, None
    ticks, labels, seen = [], [], set()
    for e in _paradigm_order(standings):
        if previous is not None and e.paradigm != previous:
            x += 0.6  # a gap between paradigm groups
        color = PARADIGM_COLORS.get(e.paradigm, "#000000")
        score = e.score(standings.ranked_by)
        ax.errorbar(
            [x],
            [score.estimate],
            yerr=[[score.estimate - score.low], [score.high - score.estimate]],
            fmt="o",
            color=color,
            capsize=5,
            markersize=7,
            label=e.paradigm if e.paradigm not in seen else None,
        )
        seen.add(e.paradigm)
        ticks.append(x)
        labels.append(_label(e))
        previous, x = e.paradigm, x + 1.0
    ax.set_xticks(ticks, labels, rotation=30, ha="right")
    ax.set_xlim(-0.7, max(x - 0.3, 0.7))
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel(f"{_measure_label(standings)} (95% CI)")
    ax.set_title(
        f"{_measure_label(standings).capitalize()} per entry, by paradigm: {standings.episode_set}",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="paradigm", fontsize=8, title_fontsize=8, loc="best")
    return _png(fig)


def _draw_untrained(ax, standings: SetStandings, suffix: str) -> None:
    """The untrained entries' scores as horizontal lines, each in its own dash pattern."""
    untrained = [e for e in standings.entries if not any(e.budget_amount(u) for u in BUDGET_UNITS)]
    for e, style in zip(untrained, itertools.cycle(_UNTRAINED_STYLES), strict=False):
        ax.axhline(
            e.score(standings.ranked_by).estimate,
            linestyle=style,
            linewidth=1.2,
            color=PARADIGM_COLORS.get(e.paradigm, "#000000"),
            alpha=0.8,
            label=f"{_label(e)} ({suffix})",
        )


def _plot_budget_panel(ax, standings: SetStandings, unit: str, label: str) -> None:
    trained = [e for e in standings.entries if e.budget_amount(unit)]
    seen: set[str] = set()
    for e in trained:
        x = e.budget_amount(unit)
        score = e.score(standings.ranked_by)
        ax.errorbar(
            [x],
            [score.estimate],
            yerr=[[score.estimate - score.low], [score.high - score.estimate]],
            fmt="o",
            color=PARADIGM_COLORS.get(e.paradigm, "#000000"),
            capsize=4,
            label=e.paradigm if e.paradigm not in seen else None,
        )
        seen.add(e.paradigm)
        ax.annotate(
            _label(e),
            (x, score.estimate),
            fontsize=7,
            xytext=(5, 4),
            textcoords="offset points",
        )
    _draw_untrained(ax, standings, "untrained")
    ax.set_xscale("log")
    if trained:
        xs = [e.budget_amount(unit) for e in trained]
        ax.set_xlim(min(xs) / 3, max(xs) * 3)
    else:
        ax.set_xlim(1e3, 1e7)
        ax.text(
            0.5,
            0.5,
            "no trained entries yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#555555",
        )
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(f"training budget: {label} (log scale)")
    ax.set_ylabel(f"{_measure_label(standings)} (95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


@_plain_text
def plot_success_vs_budget(standings: SetStandings) -> bytes:
    """PNG: success against training budget, one panel per budget unit that some entry
    states (trained tokens, env steps for RL); untrained entries are
    horizontal lines in each panel."""
    units = [u for u in BUDGET_UNITS if any(e.budget_amount(u) for e in standings.entries)]
    units = units or [next(iter(BUDGET_UNITS))]
    fig, axes = _new_figure(4.8 * len(units) + 1.6, 3.8, panels=len(units))
    for ax, unit in zip(axes, units, strict=True):
        _plot_budget_panel(ax, standings, unit, BUDGET_UNITS[unit])
    fig.suptitle(
        f"{_measure_label(standings).capitalize()} against training budget: "
        f"{standings.episode_set}",
        fontsize=10,
    )
    return _png(fig)


def _curve_units(curves: dict[str, LearningCurve]) -> list[str]:
    """The budget units of :data:`CURVE_UNITS` in which some curve has a point past 0."""
    return [
        u
        for u in CURVE_UNITS
        if any(x > 0 for c in curves.values() for x, _ in c.points.get(u, ()))
    ]


@_plain_text
def plot_learning_curves(standings: SetStandings, curves: dict[str, LearningCurve]) -> bytes:
    """PNG: each row's measure against its training budget (log scale) as its trainer
    recorded it (``curves`` by entry name: :func:`~leaderboard.learning_curves.entry_curves`),
    a panel per budget unit of :data:`CURVE_UNITS` that a curve has; a line per row, colored
    by paradigm and labelled by name, with hollow markers where the trainer scored its own
    episodes instead of dev. Untrained entries' test scores are horizontal lines. A point
    at budget 0 (a run's init) has no place on a log axis and is left off."""
    rows = [e for e in _paradigm_order(standings) if e.name in curves]
    units = _curve_units({e.name: curves[e.name] for e in rows})
    if not units:
        raise ValueError("no row's learning curve has a point past budget 0: nothing to plot")
    fig, axes = _new_figure(4.8 * len(units) + 1.6, 3.8, panels=len(units))
    for ax, unit in zip(axes, units, strict=True):
        xs, drawn = [], {}  # drawn: per paradigm, its curves so far (each its own marker)
        for e in rows:
            curve = curves[e.name]
            points = [(x, y) for x, y in curve.points.get(unit, ()) if x > 0]
            if not points:
                continue
            n = drawn[e.paradigm] = drawn.get(e.paradigm, -1) + 1
            ax.plot(
                [x for x, _ in points],
                [y for _, y in points],
                marker=_CURVE_MARKERS[n % len(_CURVE_MARKERS)],
                markersize=4,
                linewidth=1.4,
                markerfacecolor=None if curve.on_dev else "none",
                color=PARADIGM_COLORS.get(e.paradigm, "#000000"),
                label=_label(e) if curve.on_dev else f"{_label(e)} (own eval)",
            )
            xs += [x for x, _ in points]
        _draw_untrained(ax, standings, "test")
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 2, max(xs) * 2)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(f"training budget: {CURVE_UNITS[unit]} (log scale)")
        ax.set_ylabel(f"dev {_measure_label(standings)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(
        f"Learning curves, dev {_measure_label(standings)} against training budget: "
        f"{standings.episode_set}",
        fontsize=10,
    )
    return _png(fig)


def _curves_caption(standings: SetStandings, set_curves: SetCurves) -> str:
    measure = _measure_label(standings)
    parts = [
        f"Learning curves: the {measure} of each shipped checkpoint on the dev episodes "
        "against its training budget (log scale), as its trainer recorded it while it "
        "trained; the table is on the test episodes, and a trainer keeps its best dev "
        f"point, not always its last. Horizontal lines: untrained entries' test {measure}; "
        "a run's point at budget 0 (its init) is off the log axis."
    ]
    own = [name for name, c in set_curves.curves.items() if not c.on_dev]
    if own:
        where = "; ".join(
            sorted({MEASURE_KEYS[standings.ranked_by][set_curves.curves[n].key] for n in own})
        )
        parts.append(f"Hollow markers (own eval): {', '.join(own)}, scored on {where}, not on dev.")
    by_reason: dict[str, list[str]] = {}
    for name, reason in set_curves.missing.items():
        by_reason.setdefault(reason, []).append(name)
    parts += [
        f"{reason[0].upper()}{reason[1:]}: {', '.join(sorted(names))}."
        for reason, names in by_reason.items()
    ]
    return " ".join(parts)


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img class="plot" alt="{escape(alt)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(caption)}</figcaption>'
        "</figure>"
    )


def _curves_figure(standings: SetStandings, set_curves: SetCurves | None) -> list[str]:
    """The learning-curve figure of a set, or nothing when no curve can be drawn."""
    if set_curves is None or not _curve_units(set_curves.curves):
        return []
    return [
        _img(
            plot_learning_curves(standings, set_curves.curves),
            f"learning curves: dev {_measure_label(standings)} against training budget, "
            f"{standings.episode_set}",
            _curves_caption(standings, set_curves),
        )
    ]


def _table(standings: SetStandings) -> str:
    names = columns(standings)
    head = "".join(f"<th>{escape(c)}</th>" for c in names)
    numeric = {i for i, c in enumerate(names) if c in NUMERIC_COLUMNS}
    body = []
    for entry, row in zip(standings.entries, standing_rows(standings), strict=True):
        cells = "".join(
            f'<td class="num">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(
            f'<tr class="entry" data-entry="{escape(entry.name)}" '
            f'data-labels="{escape(entry.labels)}">{cells}</tr>'
        )
    return (
        f'<table data-episode-set="{escape(standings.episode_set)}"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def render_html(
    all_standings: list[SetStandings],
    title: str = "dialog-bench leaderboard",
    figures: dict[str, list[tuple[bytes, str, str]]] | None = None,
    curves: dict[str, SetCurves] | None = None,
) -> str:
    """The whole page as a string; ``figures``: env id -> ``(png, alt, caption)`` drawn
    in each section of that env id (e.g. the chat task's over-optimization plot);
    ``curves``: episode set id -> its rows' learning curves
    (:func:`leaderboard.learning_curves.entry_curves`), plotted in that set's section
    when at least one has a point past budget 0, the rows without one named below it."""
    figures, curves = figures or {}, curves or {}
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<p>SFT and RL dialogue agents on identical, seeded episodes. Every episode was "
        "replayed; the checked column says whether the board loaded the weights and played "
        "every episode itself (played by the board) or a results file's transcripts were "
        "replayed (replayed), and the declared column what rests on a manifest's or a "
        "submitter's word.</p>",
    ]
    if not all_standings:
        parts.append("<p>No entries yet: run <code>dialog-bench run</code>.</p>")
    for s in all_standings:
        parts += [
            f'<section data-episode-set="{escape(s.episode_set)}">',
            f"<h2>{escape(set_title(s))}</h2>",
            _table(s),
            *(f'<p class="verdict">{escape(v)}</p>' for v in s.verdicts),
            _img(
                plot_success_by_paradigm(s),
                f"{_measure_label(s)} by paradigm, {s.episode_set}",
                f"{_measure_label(s).capitalize()} of each entry with its 95% bootstrap CI, "
                "grouped by paradigm.",
            ),
            _img(
                plot_success_vs_budget(s),
                f"{_measure_label(s)} against budget, {s.episode_set}",
                f"{_measure_label(s).capitalize()} against training budget (log scale), in "
                "the board's vocabulary: trained tokens (SFT and RL), env steps all in "
                "(RL); a best-of-n row trains nothing; dashed and dotted lines: untrained "
                "entries.",
            ),
            *_curves_figure(s, curves.get(s.episode_set)),
            *(_img(*figure) for figure in figures.get(s.env_id, ())),
            "</section>",
        ]
    parts += [f'<p class="note">{escape(stats_footnote())}</p>', "</body></html>\n"]
    return "\n".join(parts)
