"""Rendering the standings: terminal table, Markdown, JSON (and HTML via ``leaderboard.html``).

``dialog-bench leaderboard [--db PATH] [--format table|md|html|json] [--out PATH]`` reads
the SQLite store and prints (or writes) the leaderboard of every episode set in it. Every
format says of each entry what the board checked (the ``checked`` column: "played by the
board", or "replayed" for a results file whose transcripts were replayed) and what it
takes on trust (the ``declared`` column; the JSON's ``checked`` and ``declared`` keys).
The terminal table fits :data:`TERMINAL_WIDTH` columns (long cells wrap, the ties and
per-goal columns are left to ``md`` and ``json``); ``json`` holds everything.
Names are text everywhere: escaped in Markdown and HTML, never read as markup or math.
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from pathlib import Path

from leaderboard.standings import SetStandings, compute_standings, standings_to_json
from leaderboard.store import DEFAULT_DB, LeaderboardStore
from leaderboard.table import (
    COLUMNS,
    GOLD_COLUMNS,
    PLAYED,
    REPLAYED,
    checked_cell,
    columns,
    set_title,
    standing_rows,
    stats_footnote,
)

__all__ = [
    "fit_table",
    "md_text",
    "printable",
    "COLUMNS",
    "FORMATS",
    "GOLD_COLUMNS",
    "PLAYED",
    "REPLAYED",
    "TERMINAL_WIDTH",
    "checked_cell",
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
#: The terminal table's width: long cells wrap to fit it.
TERMINAL_WIDTH = 120
#: Columns the terminal table leaves out (the Markdown and JSON formats have them).
_MD_SPECIAL = re.compile(r"[\\`*_|<>$~]")
#: A bracket that is not a CI's (``[0.90, 0.95]``, ``[-0.1, +0.2]``).
_MD_BRACKET = re.compile(r"\[(?![-+]?\d)|(?<!\d)\]")
_TERMINAL_OMITS = (
    "budget",
    "declared",
    "success: booking / inform goals",
    "IQM return",
    "tied with",
)
#: Shorter headers in the terminal (each is explained in the footnote).
_TERMINAL_HEADERS = {"rank": "#", "interface": "iface"}
#: The terminal table's columns that may wrap (the others are figures, kept whole).
_TERMINAL_WRAPS = ("entry", "paradigm", "checked")
_EMPTY = "No entries yet: run `dialog-bench run`, or `dialog-bench submit RESULTS.json`."


def _verdict_lines(standings: SetStandings) -> list[str]:
    """The SFT vs RL verdicts, a blank line between them (paragraphs in Markdown)."""
    lines: list[str] = []
    for verdict in standings.verdicts:
        lines += ["", verdict] if lines else [verdict]
    return lines


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters (long words broken); ``[""]``
    for an empty cell."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def fit_table(
    rows: list[list[str]], width: int = TERMINAL_WIDTH, gap: int = 2, fixed: tuple[int, ...] = ()
) -> list[str]:
    """``rows`` (the first one the header) as text lines of at most ``width`` characters,
    a dashed line under the header. Columns not in ``fixed`` are narrowed one character
    at a time, the one with the most room above its longest word first, and their cells
    wrapped onto more lines, until the table fits (words are broken only when nothing
    else fits).

    >>> lines = fit_table([["name", "note"], ["a", "a rather long note " * 3]], width=30)
    >>> max(map(len, lines)) <= 30, len(lines) > 3
    (True, True)
    """
    body = rows[1:] or rows
    # a fixed column is as wide as its widest figure (its header may wrap)
    widths = [
        max(
            max(len(r[i]) for r in body),
            max(map(len, rows[0][i].split() or [""])) if i in fixed else len(rows[0][i]),
        )
        for i in range(len(rows[0]))
    ]
    free = [i for i in range(len(widths)) if i not in fixed] or list(range(len(widths)))
    words = {i: max(len(w) for r in body for w in r[i].split() or [""]) for i in free}
    while sum(widths) + gap * (len(widths) - 1) > width:
        room = {i: widths[i] - max(words[i], 4) for i in free}
        i = max(room, key=room.get)
        if room[i] <= 0:
            i = max(free, key=lambda k: widths[k])
            if widths[i] <= 4:
                break
        widths[i] -= 1
    lines = []
    for n, row in enumerate(rows):
        cells = [_wrap(cell, w) for cell, w in zip(row, widths, strict=True)]
        for k in range(max(map(len, cells))):
            parts = [
                (c[k] if k < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)
            ]
            lines.append((" " * gap).join(parts).rstrip())
        if n == 0:
            lines.append((" " * gap).join("-" * w for w in widths))
    return lines


def _budget_lines(standings: SetStandings, width: int) -> list[str]:
    """The terminal's note of each trained entry's budget and declared labels (the table
    has no room for them)."""
    lines = ["Budget and declared labels:"]
    for e in standings.entries:
        if e.budget_text == "none" and not e.declared:
            continue
        declared = f" (declared: {', '.join(e.declared)})" if e.declared else ""
        text = f"{e.name}: {e.budget_text}{declared}"
        lines += textwrap.wrap(
            text, width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
        )
    return lines if len(lines) > 1 else []


def render_table(all_standings: list[SetStandings], width: int = TERMINAL_WIDTH) -> str:
    """Plain-text tables for a terminal, one per episode set, each line at most ``width``
    characters: long cells wrap, and each entry's budget and declared labels follow the
    table (ties and per-goal success are in ``md`` and ``json``)."""
    if not all_standings:
        return _EMPTY + "\n"
    blocks = []
    for s in all_standings:
        names = columns(s)
        keep = [i for i, c in enumerate(names) if c not in _TERMINAL_OMITS]
        header = [_TERMINAL_HEADERS.get(names[i], names[i]) for i in keep]
        rows = [header, *([printable(r[i]) for i in keep] for r in standing_rows(s))]
        # the figures never wrap: names and the checked words do
        fixed = tuple(k for k, i in enumerate(keep) if names[i] not in _TERMINAL_WRAPS)
        verdicts = ["\n".join(_wrap(printable(v), width)) if v else "" for v in _verdict_lines(s)]
        title = "\n".join(_wrap(set_title(s), width))
        table = fit_table(rows, width, fixed=fixed)
        blocks.append("\n".join([title, "", *table, "", *_budget_lines(s, width), "", *verdicts]))
    note = " The terminal leaves out IQM, ties and success per goal kind: --format md or json."
    footnote = "\n".join(_wrap(stats_footnote() + note, width))
    return "\n\n".join(blocks) + "\n\n" + footnote + "\n"


def printable(text: str) -> str:
    """``text`` with each character that is not printable (a newline, a control or a
    bidi character) written as its escape, so a stored name stays on its one line.

    >>> printable("expert\\n\\u202e")
    'expert\\\\n\\\\u202e'
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def md_text(text: str) -> str:
    """A cell's (or a verdict's) text as Markdown text: every character that Markdown or
    inline HTML could read as markup is backslash-escaped (brackets unless they hold a
    CI), so any stored name is shown as it is, never as a link, tag, emphasis or math.

    >>> print(md_text("a|b_<i>$x$ [y](z) [0.1, 0.2]"))
    a\\|b\\_\\<i\\>\\$x\\$ \\[y\\](z) [0.1, 0.2]
    """
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), printable(text))
    return _MD_BRACKET.sub(lambda m: "\\" + m.group(0), text)


def markdown_table(standings: SetStandings) -> str:
    """One episode set as a Markdown table followed by the SFT vs RL verdict."""
    names = columns(standings)
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(" --- " for _ in names) + "|"]
    for row in standing_rows(standings):
        lines.append("| " + " | ".join(md_text(c) for c in row) + " |")
    verdicts = [md_text(v) for v in _verdict_lines(standings)]
    return "\n".join([*lines, "", *verdicts]) + "\n"


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
    curves from the shipped manifests (JSON only), the chat task's over-optimization
    plot where ``dialog-bench overopt`` wrote its curves and the careless lineage's
    performance profile over seeds where ``dialog-bench seeds`` wrote its data.
    ``dialog-bench run`` writes this page, and ``dialog-bench leaderboard --format html``
    prints the same one."""
    from leaderboard.html_page import render_html
    from leaderboard.learning_curves import entry_curves
    from leaderboard.overoptimization import page_figures
    from leaderboard.profile_page import page_figures as profile_figures

    curves = {s.episode_set: entry_curves(s) for s in all_standings}
    figures = page_figures()
    for env_id, drawn in profile_figures().items():
        figures[env_id] = figures.get(env_id, []) + drawn
    return render_html(all_standings, figures=figures, curves=curves)


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
        description="Show every entry of the database (each replayed), per env id and "
        "episode set: success and return with 95% bootstrap CIs, IQM, turns, ties, "
        "what the board checked and what is declared, the SFT-vs-RL verdicts inside one "
        "lineage and best vs best across lineages. The table fits 120 columns; "
        "--format json holds every figure.",
    )
    p.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"SQLite database (default: {DEFAULT_DB})"
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (terminal, 120 columns), md, html (static page with plots) or json "
        "(every figure); default: table",
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
