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

from leaderboard.standings import SetStandings, compute_standings, standings_to_json
from leaderboard.store import DEFAULT_DB, LeaderboardStore
from leaderboard.table import (
    COLUMNS,
    GOLD_COLUMNS,
    columns,
    set_title,
    standing_rows,
    stats_footnote,
)

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

FORMATS = ("table", "md", "html", "json")
_EMPTY = "No entries yet: run `dialog-bench run`, or `dialog-bench submit RESULTS.json`."


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
