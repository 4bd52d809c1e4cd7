"""The cells of the leaderboard table, which every format draws: columns, rows, titles.

The terminal table, the Markdown (:mod:`leaderboard.render`) and the HTML page
(:mod:`leaderboard.html_page`) all lay out the same cells: what a column holds, how a
number is written and what the checked and declared labels say is decided here, once.
"""

from __future__ import annotations

from leaderboard.standings import EntryStanding, SetStandings
from leaderboard.stats import CONFIDENCE, N_RESAMPLES, Interval

__all__ = [
    "COLUMNS",
    "GOLD_COLUMNS",
    "PLAYED",
    "REPLAYED",
    "checked_cell",
    "columns",
    "set_title",
    "standing_rows",
    "stats_footnote",
]

_LEAD = ("rank", "entry", "paradigm", "interface", "budget", "checked", "declared")
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
#: The two ways an entry is checked: the board loaded its weights and played every episode
#: itself, or a results file's transcripts were replayed (who wrote them is declared).
PLAYED, REPLAYED = "played by the board", "replayed"


def _ci(interval: Interval, digits: int = 3) -> str:
    return f"{interval.estimate:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def _by_goal(entry) -> str:
    """``"0.74 / 0.95"``: success on goals with a booking, then on goals without."""
    by = entry.success_by_goal
    return " / ".join(f"{by[k]:.2f}" if k in by else "-" for k in ("booking", "inform"))


def checked_cell(entry: EntryStanding) -> str:
    """What the board checked of ``entry``, in words: how (played or replayed), the row its
    start was checked to be, and the rows whose weights are its very own.

    >>> from leaderboard.stats import Interval
    >>> i = Interval(0.5, 0.4, 0.6)
    >>> e = EntryStanding("rl-a", "lm", "sft-rl", "token", {}, "verified", 10, i, i, i, 4.0,
    ...                   checked=("weights", "start"), start="sft-a", same_weights_as=("x",))
    >>> checked_cell(e)
    'played by the board; starts from sft-a; same weights as x'
    """
    parts = [PLAYED if "weights" in entry.checked else REPLAYED]
    if entry.start:
        parts.append(f"starts from {entry.start}")
    if entry.same_weights_as:
        parts.append(f"same weights as {', '.join(entry.same_weights_as)}")
    return "; ".join(parts)


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
                e.budget_text,
                checked_cell(e),
                ", ".join(e.declared) or "-",
                *scores,
                _ci(e.mean_return),
                f"{e.iqm_return.estimate:.3f}",
                f"{e.mean_turns:.1f}",
                ", ".join(e.tied_with) or "-",
            ]
        )
    return rows


def set_title(standings: SetStandings) -> str:
    return (
        f"{standings.env_id}: episode set {standings.episode_set} ({standings.episodes} episodes)"
    )


def stats_footnote() -> str:
    """The note under every format's tables: the statistics and the words of the labels."""
    return (
        f"Success and return: mean with a {CONFIDENCE:.0%} percentile bootstrap CI "
        f"({N_RESAMPLES:,} resamples, fixed seed). IQM: interquartile mean of returns. "
        "Turns: agent messages per episode, tool calls included. Entries whose success "
        "CIs overlap are tied (rank marked =). Every episode was replayed: reset with its "
        "seed and the agent's messages fed again, every turn, reward and metric matched. "
        f"Checked: {PLAYED}, the board loaded the agent (a built-in agent or a checkpoint "
        "directory) and played every episode itself, so its weights hash, interface, env "
        f"and episodes are verified; {REPLAYED}, a submitted results file, whose transcripts "
        "the replay proves but whose weights, interface, paradigm, budget and data are the "
        "submitter's word. Declared: what the board takes on a manifest's or a submitter's "
        "word (paradigm, budget, training data); an RL row's start is checked when its "
        "manifest's init weights hash is another played row's weights, a best-of-n row's "
        "base when the base its config names is the very checkpoint another row played "
        "(directory hash). Budget: trained tokens (a gradient was taken on them), sampled "
        "tokens (written in rollouts), env steps all in, CPU or wall time; an SFT->RL row "
        "adds its start's budget (+ start); a best-of-n row trains nothing and states its "
        "base's. The SFT vs RL verdicts (and best-of-n vs its base) compare rows of one "
        "lineage (one demonstrator's demos and every row trained from them); best vs best "
        "across lineages is shown as such, never as a verdict. A set "
        "with gold scores (Dialog-Chat-v1) is ranked, tied and compared by gold, the "
        "hidden judge's mean score of the replies; its return is the learned reward "
        "model's, a proxy."
    )
