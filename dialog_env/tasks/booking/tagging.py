"""Slot tags of user sentences: BIO tags over words, read off the voice's placeholders.

The user's voice writes a delexicalized sentence (``I want [food] food in the [area].``)
and fills in the act's values, so every voiced turn carries its slot tags for free:
the words a placeholder's value became are ``B-food`` (the first) and ``I-food`` (the
rest), every other word ``O``. :func:`tag_sentence` does exactly that;
:func:`tagged_values` reads the slot values back from tags, which is what a learned
slot tagger (:mod:`dialog_env.tasks.booking.tagger`) hands the tracker.

Words are what :func:`words` splits: a time (``19:30``) is one word, other runs of
letters and digits are words, and each other non-space character is a word of its own.

>>> text, tags = tag_sentence("A table for [people] on [day].", {"people": "4", "day": "friday"})
>>> text, tags
('A table for 4 on friday.', ['O', 'O', 'O', 'B-people', 'O', 'B-day', 'O'])
>>> tagged_values([w for w, _ in words(text)], tags)
{'people': '4', 'day': 'friday'}
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dialog_env.tasks.booking.domain import DAYS, MAX_PEOPLE, SLOT_VALUES, TIMES
from dialog_env.tasks.booking.voice import PLACEHOLDER_RE, PLACEHOLDER_SLOTS

__all__ = [
    "TAGS",
    "WORD_RE",
    "entity_spans",
    "slot_value",
    "tag_sentence",
    "tagged_values",
    "words",
]

#: The tag set: ``O``, then ``B-``/``I-`` of every placeholder slot (its index is the
#: tagger's label id).
TAGS: tuple[str, ...] = ("O", *(f"{p}-{s}" for s in PLACEHOLDER_SLOTS for p in ("B", "I")))
WORD_RE = re.compile(r"\d{1,2}:\d{2}|[A-Za-z0-9]+|[^\sA-Za-z0-9]")


def words(text: str) -> list[tuple[str, tuple[int, int]]]:
    """The words of ``text`` with their character spans.

    >>> [w for w, _ in words("Book it at 19:30, for 2 people.")]
    ['Book', 'it', 'at', '19:30', ',', 'for', '2', 'people', '.']
    """
    return [(m.group(), m.span()) for m in WORD_RE.finditer(text)]


def tag_sentence(delexicalized: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """The filled sentence and one BIO tag per word of it (module docstring).

    A word that overlaps a placeholder's value takes that slot's tag (a value glued to a
    word, ``[people]-strong``, tags the whole word); a placeholder without a value stays
    as it is and is tagged ``O``.
    """
    pieces, spans, at = [], [], 0
    for m in PLACEHOLDER_RE.finditer(delexicalized):
        slot = m.group(1)
        pieces.append(delexicalized[at : m.start()])
        value = values.get(slot, m.group())
        start = sum(len(p) for p in pieces)
        pieces.append(value)
        if slot in values:
            spans.append((start, start + len(value), slot))
        at = m.end()
    pieces.append(delexicalized[at:])
    text = "".join(pieces)
    tags, previous = [], None
    for _, (start, end) in words(text):
        hit = next(((s, e, slot) for s, e, slot in spans if start < e and s < end), None)
        if hit is None:
            tags.append("O")
        else:
            tags.append(("I-" if hit == previous else "B-") + hit[2])
        previous = hit
    return text, tags


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(slot, first word, end word)`` of each entity; an ``I-`` without its ``B-``
    starts one (as ``seqeval``'s default reading does).

    >>> entity_spans(["O", "B-food", "I-food", "O", "I-area"])
    [('food', 1, 3), ('area', 4, 5)]
    """
    spans: list[tuple[str, int, int]] = []
    for i, tag in enumerate(tags):
        prefix, _, slot = tag.partition("-")
        if prefix == "I" and spans and spans[-1][0] == slot and spans[-1][2] == i:
            spans[-1] = (slot, spans[-1][1], i + 1)
        elif prefix in ("B", "I"):
            spans.append((slot, i, i + 1))
    return spans


def slot_value(slot: str, text: str) -> str | None:
    """The slot's value that ``text`` (an entity's words) names, or ``None`` when it names
    none the domain knows: the tracker's ontology check of a tagged span.

    >>> slot_value("time", "9:30"), slot_value("people", "04"), slot_value("food", "Thai")
    (None, '4', 'thai')
    """
    low = text.lower()
    if slot in SLOT_VALUES:
        return low if low in SLOT_VALUES[slot] else None
    if slot == "day":
        return low if low in DAYS else None
    if slot == "time":
        low = low.zfill(5)
        return low if low in TIMES else None
    if slot == "people" and low.isdigit() and 1 <= int(low) <= MAX_PEOPLE:
        return str(int(low))
    return None


def tagged_values(sentence_words: Sequence[str], tags: Sequence[str]) -> dict[str, str]:
    """The slot values that ``tags`` mark in ``sentence_words``: per slot the last entity
    whose words name a known value (:func:`slot_value`), as the rule-based parser keeps
    the last value it finds."""
    found: dict[str, str] = {}
    for slot, start, end in entity_spans(tags):
        value = slot_value(slot, " ".join(sentence_words[start:end]))
        if value is not None:
            found[slot] = value
    return found
