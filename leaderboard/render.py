"""Rendering the standings: terminal table, Markdown, JSON (and HTML via ``leaderboard.html``).

``dialog-bench leaderboard [--db PATH] [--format table|md|html|json] [--out PATH]`` reads
the SQLite store and prints (or writes) the leaderboard of every episode set in it. Every
format marks each entry's labels as verified or declared (the ``labels`` column, the
JSON's ``labels`` key).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from leaderboard.standings import (
    SetStandings,
    compute_standings,
    format_budget,
    standings_to_json,
)
from leaderboard.stats import CONFIDENCE, N_RESAMPLES, Interval
from leaderboard.store import DEFAULT_DB, LeaderboardStore

__all__ = [
    "COLUMNS",
    "FORMATS",
    "GOLD_COLUMNS",
    "add_parser",
    "leaderboard_html",
    "markdown_table",
    "render",
    "render_markdown",
    "render_table",
    "columns",
    "set_title",
    "stats_footnote",
    "standing_rows",
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
FORMATS = ("table", "md", "html", "json")
_EMPTY = "No entries yet: run `dialog-bench run`, or `dialog-bench submit RESULTS.json`."


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
    return (
        f"{standings.env_id}: episode set {standings.episode_set} ({standings.episodes} episodes)"
    )


def stats_footnote() -> str:
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


def _verdict_lines(standings: SetStandings) -> list[str]:
    """The SFT vs RL verdicts, a blank line between them (paragraphs in Markdown)."""
    lines: list[str] = []
    for verdict in standings.verdicts:
        lines += ["", verdict] if lines else [verdict]
    return lines


def render_table(all_standings: list[SetStandings]) -> str:
    """Plain-text tables for a terminal, one per episode set."""
    if not all_standings:
        return _EMPTY + "\n"
    blocks = []
    for s in all_standings:
        rows = [list(columns(s)), *standing_rows(s)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        blocks.append("\n".join([set_title(s), "", *lines, "", *_verdict_lines(s)]))
    return "\n\n".join(blocks) + "\n\n" + stats_footnote() + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(standings: SetStandings) -> str:
    """One episode set as a Markdown table followed by the SFT vs RL verdict."""
    names = columns(standings)
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(" --- " for _ in names) + "|"]
    for row in standing_rows(standings):
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    return "\n".join([*lines, "", *_verdict_lines(standings)]) + "\n"


def render_markdown(all_standings: list[SetStandings], title: str | None = None) -> str:
    """Markdown: a section per episode set with its table and the SFT vs RL verdict."""
    out = [f"# {title}", ""] if title else []
    if not all_standings:
        return "\n".join([*out, _EMPTY, ""])
    for s in all_standings:
        out += [f"## {set_title(s)}", "", markdown_table(s)]
    out += [stats_footnote(), ""]
    return "\n".join(out)


def leaderboard_html(all_standings: list[SetStandings]) -> str:
    """The static HTML page with every figure: the standings' plots, each set's learning
    curves from the shipped manifests (JSON only) and the chat task's over-optimization
    plot where ``dialog-bench overopt`` wrote its curves. ``dialog-bench run`` writes this
    page, and ``dialog-bench leaderboard --format html`` prints the same one."""
    from leaderboard.html_page import render_html
    from leaderboard.learning_curves import entry_curves
    from leaderboard.overoptimization import page_figures

    curves = {s.episode_set: entry_curves(s) for s in all_standings}
    return render_html(all_standings, figures=page_figures(), curves=curves)


def render(all_standings: list[SetStandings], fmt: str) -> str:
    """The standings in ``fmt``: one of ``FORMATS``."""
    if fmt == "table":
        return render_table(all_standings)
    if fmt == "md":
        return render_markdown(all_standings, title="dialog-bench leaderboard")
    if fmt == "json":
        return json.dumps(standings_to_json(all_standings), indent=2) + "\n"
    if fmt == "html":
        return leaderboard_html(all_standings)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="show the leaderboard of a results database",
        description="Show every verified entry of the database, per env id and episode set: "
        "success and return with 95%% bootstrap CIs, IQM, turns, ties, and best SFT vs "
        "best RL on the same episodes.",
    )
    p.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"SQLite database (default: {DEFAULT_DB})"
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (terminal), md, html (static page with plots) or json",
    )
    p.add_argument(
        "--out", type=Path, default=None, metavar="PATH", help="write to PATH instead of printing"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not args.db.exists():
        raise FileNotFoundError(
            f"no database at {args.db}: run `dialog-bench run` or `dialog-bench submit` first"
        )
    text = render(compute_standings(LeaderboardStore(args.db).entries()), args.format)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0
