"""Generated blocks of a Markdown page: the text between a start and an end marker line.

The README's leaderboard excerpt (:mod:`leaderboard.publish`) and the over-optimization
study's table (:mod:`leaderboard.overopt_report`) are written between such markers, so a
test can rebuild a block from the committed files and compare it with the page.

>>> import tempfile, pathlib
>>> page = pathlib.Path(tempfile.mkdtemp()) / "page.md"
>>> _ = page.write_text("intro\\n<!-- a:start -->\\nold\\n<!-- a:end -->\\nrest\\n")
>>> replace_marked_block(page, "new", ("<!-- a:start -->", "<!-- a:end -->"))
True
>>> marked_block(page, ("<!-- a:start -->", "<!-- a:end -->"))
'new'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["marked_block", "replace_marked_block"]


def _split(text: str, markers: tuple[str, str]) -> tuple[str, str, str] | None:
    """``(head, block, tail)`` around the markers, or None without them in that order."""
    start, end = markers
    if start not in text or end not in text or text.index(start) > text.index(end):
        return None
    head, rest = text.split(start, 1)
    block, tail = rest.split(end, 1)
    return head, block, tail


def marked_block(page: Path, markers: tuple[str, str]) -> str | None:
    """The text between ``page``'s markers (stripped), or None without them."""
    parts = _split(page.read_text(encoding="utf-8"), markers)
    return None if parts is None else parts[1].strip()


def replace_marked_block(page: Path, block: str, markers: tuple[str, str]) -> bool:
    """Put ``block`` between ``page``'s markers; False if the page or its markers are
    missing."""
    if not page.is_file():
        return False
    parts = _split(page.read_text(encoding="utf-8"), markers)
    if parts is None:
        return False
    head, _, tail = parts
    start, end = markers
    page.write_text(f"{head}{start}\n{block.strip()}\n{end}{tail}", encoding="utf-8")
    return True
