"""Text plumbing shared by every task: the charset, message normalization, transcripts.

Agent messages are untrusted text. ``normalize_message`` turns any ``str`` into a single
printable-ASCII line of bounded length, so that content is never an error and every
observation stays inside its ``Text`` space.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CHARSET",
    "Turn",
    "format_transcript",
    "normalize_message",
    "parse_transcript",
    "truncate_transcript",
]

#: Printable ASCII plus the newline that separates turns.
CHARSET = "".join(sorted(set(string.printable) - set("\t\r\x0b\x0c")))
_SPACE_RUN = re.compile(r"\s+")
_UNKNOWN = "\x1a"  # stands for a character without an ASCII reading, until runs fold to "?"
_UNKNOWN_RUN = re.compile(_UNKNOWN + "+")

ROLES = ("user", "assistant", "tool")


@dataclass(frozen=True)
class Turn:
    """One line of a conversation: who spoke (``user``, ``assistant``, ``tool``) and what."""

    role: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "text": self.text}


def _to_ascii(ch: str) -> str:
    if ch.isascii():
        return ch
    # Keep what has an ASCII reading (é -> e, ｆ -> f); anything else becomes "?".
    base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
    return base if base else _UNKNOWN


def normalize_message(text: str, max_chars: int) -> tuple[str, bool]:
    """Make an agent message safe for the transcript; return ``(text, was_truncated)``.

    NFC-normalizes, drops lone surrogates and control/format characters, folds all
    whitespace (newlines included) into single spaces, transliterates to ASCII where a
    reading exists and marks the rest with ``?``, then caps the length.

    >>> normalize_message("  Caf\\u00e9\\n\\x00 ok\\U0001F600  ", 100)
    ('Cafe ok?', False)
    >>> normalize_message("what?? \u4f60\u597d", 100)
    ('what?? ?', False)
    >>> normalize_message("x" * 10, 4)
    ('xxxx', True)
    """
    if not isinstance(text, str):
        raise TypeError(f"a message must be a str, got {type(text).__name__}")
    if text.isascii() and text.isprintable():  # the common case: nothing to fold
        text = _SPACE_RUN.sub(" ", text).strip()
        return (text[:max_chars].rstrip(), True) if len(text) > max_chars else (text, False)
    # Lone surrogates cannot be encoded at all; drop them before anything else.
    text = "".join(c for c in text if not 0xD800 <= ord(c) <= 0xDFFF)
    text = unicodedata.normalize("NFC", text)
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace():
            kept.append(" ")
        elif cat[0] == "C" or cat[0] == "M":  # control, format, unassigned; stray marks
            continue
        else:
            kept.append(_to_ascii(ch))
    text = _SPACE_RUN.sub(" ", "".join(kept)).strip()
    text = _UNKNOWN_RUN.sub("?", text)  # "what??" typed by the agent stays as it is
    if len(text) > max_chars:
        return text[:max_chars].rstrip(), True
    return text, False


def format_transcript(turns: Sequence[Turn]) -> str:
    """One ``role: text`` line per turn.

    >>> format_transcript([Turn("user", "hi"), Turn("assistant", "hello")])
    'user: hi\\nassistant: hello'
    """
    return "\n".join(f"{t.role}: {t.text}" for t in turns)


def parse_transcript(text: str) -> list[Turn]:
    """Inverse of :func:`format_transcript` (lines without a known role are skipped).

    >>> parse_transcript("user: hi\\nassistant: [search] food=thai")
    [Turn(role='user', text='hi'), Turn(role='assistant', text='[search] food=thai')]
    """
    turns = []
    for line in text.split("\n"):
        role, sep, rest = line.partition(": ")
        if sep and role in ROLES:
            turns.append(Turn(role, rest))
        elif line.rstrip(":") in ROLES:  # an empty message
            turns.append(Turn(line.rstrip(":"), ""))
    return turns


def truncate_transcript(text: str, max_chars: int) -> str:
    """Cut from the left at a turn boundary so that at most ``max_chars`` remain.

    >>> truncate_transcript("user: a\\nassistant: b\\nuser: c", 20)
    'assistant: b\\nuser: c'
    """
    if len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    nl = text.find("\n", cut - 1)
    if nl == -1:  # a single overlong turn: keep its tail
        return text[-max_chars:]
    return text[nl + 1 :]
