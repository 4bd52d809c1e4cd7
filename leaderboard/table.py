"""The cells of the leaderboard table, which every format draws: columns, rows, titles.

The terminal table, the Markdown (:mod:`leaderboard.render`) and the HTML page
(:mod:`leaderboard.html_page`) all lay out the same cells: what a column holds and how a
number is written is decided here, once.
"""

from __future__ import annotations

from leaderboard.standings import SetStandings, format_budget
from leaderboard.stats import CONFIDENCE, N_RESAMPLES, Interval

__all__ = [
    "COLUMNS",
    "GOLD_COLUMNS",
    "columns",
    "set_title",
    "standing_rows",
    "stats_footnote",
]

_LEAD = ("rank", "entry", "paradigm", "interface", "budget", "labels")
_TRAIL = ("IQM return", "turns", "tied with")
COLUMNS = (
    *_LEAD,
    "success [95% CI]",
    "success: booking / inform goals",
    "mean return [95% CI]",
    *_TRAIL,
)
#: The columns of a set ranked by a hidden gold judge (``Dialog-Chat-v1``): its return is
#: the learned reward model's, a proxy, shown beside the gold score that ranks.
GOLD_COLUMNS = (*_LEAD, "gold [95% CI]", "success [95% CI]", "proxy return [95% CI]", *_TRAIL)


def _ci(interval: Interval, digits: int = 3) -> str:
    return f"{interval.estimate:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def _by_goal(entry) -> str:
    """``"0.74 / 0.95"``: success on goals with a booking, then on goals without."""
    by = entry.success_by_goal
    return " / ".join(f"{by[k]:.2f}" if k in by else "-" for k in ("booking", "inform"))


def columns(standings: SetStandings) -> tuple[str, ...]:
    """The column names of one episode set: :data:`GOLD_COLUMNS` when it is ranked by gold."""
    return GOLD_COLUMNS if standings.ranked_by == "gold" else COLUMNS


def standing_rows(standings: SetStandings) -> list[list[str]]:
    """The table cells of one episode set (see :func:`columns`), one row per entry in rank
    order."""
    rows = []
    for e in standings.entries:
        rank = f"{e.rank}=" if e.tied_with else str(e.rank)
        scores = (
            [_ci(e.gold), _ci(e.success)]
            if standings.ranked_by == "gold"
            else [_ci(e.success), _by_goal(e)]
        )
        rows.append(
            [
                rank,
                e.name,
                e.paradigm,
                e.interface,
                format_budget(e.budget),
                e.labels,
                *scores,
                _ci(e.mean_return),
                f"{e.iqm_return.estimate:.3f}",
                f"{e.mean_turns:.1f}",
                ", ".join(e.tied_with) or "-",
            ]
        )
    return rows


def set_title(standings: SetStandings) -> str:
    """The heading of one episode set: env id, set name and episode count."""
    return (
        f"{standings.env_id}: episode set {standings.episode_set} ({standings.episodes} episodes)"
    )


def stats_footnote() -> str:
    """What every table's numbers mean: the CIs, IQM, ties and the two labels."""
    return (
        f"Success and return: mean with a {CONFIDENCE:.0%} percentile bootstrap CI "
        f"({N_RESAMPLES:,} resamples, fixed seed). IQM: interquartile mean of returns. "
        "Turns: agent messages per episode, tool calls included. Entries whose success "
        "CIs overlap are tied (rank marked =). Every episode was verified by replay. "
        "Labels: verified, the leaderboard loaded the agent (a built-in agent or a "
        "checkpoint directory) and played every episode itself, so its paradigm, "
        "interface, budget (from the checkpoint's manifest) and model hash are read from "
        "what ran; declared, a submitted results file, whose transcripts the replay proves "
        "but whose paradigm, interface, budget and model hash are the submitter's word. "
        "SFT vs RL compares verified entries. A set with gold scores (Dialog-Chat-v1) is "
        "ranked, tied and compared by gold, the hidden judge's mean score of the replies; "
        "its return is the learned reward model's, a proxy."
    )
