"""The assistant's two tools: ``[search]`` over venues and ``[book]`` in the reservation book.

A message that starts with ``[name]`` is a tool call; the rest of it is ``slot=value``
pairs (values with spaces in double quotes)::

    [search] food=italian area=north
    [book] name="The Golden Fox" people=4 day=friday time=19:00

The result is one ``[result] ...`` line that the next observation shows. Malformed calls
are never an error of the environment: they get an error result that says what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from dialog_env.tasks.booking.domain import (
    CONSTRAINT_SLOTS,
    DAYS,
    MAX_PEOPLE,
    SLOT_VALUES,
    TIMES,
    ReservationBook,
    Venue,
    VenueDatabase,
)

__all__ = [
    "Booking",
    "ToolBox",
    "format_kv",
    "is_tool_call",
    "parse_kv",
    "parse_search_result",
    "MAX_LISTED",
]

TOOL_CALL_RE = re.compile(r"^\[([A-Za-z_]+)\]\s*(.*)$")
_KV_RE = re.compile(r'([A-Za-z_]+)=("([^"]*)"|\S+)')
MAX_LISTED = 5  # search results shown in full; the count says how many matched
_REF_ALPHABET = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"))
VENUE_FIELDS = ("name", "area", "food", "price", "phone", "address", "postcode")


def is_tool_call(message: str) -> bool:
    return TOOL_CALL_RE.match(message) is not None


def parse_kv(text: str) -> dict[str, str]:
    """``slot=value`` pairs of a tool call or result; later pairs win.

    >>> parse_kv('name="The Oak Mill" people=4 junk day=friday')
    {'name': 'The Oak Mill', 'people': '4', 'day': 'friday'}
    """
    return {
        m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2)
        for m in _KV_RE.finditer(text)
    }


def format_kv(pairs: dict[str, str]) -> str:
    """Inverse of :func:`parse_kv`.

    >>> format_kv({"name": "The Oak Mill", "people": "4"})
    'name="The Oak Mill" people=4'
    """
    return " ".join(f'{k}="{v}"' if " " in v or not v else f"{k}={v}" for k, v in pairs.items())


@dataclass(frozen=True)
class Booking:
    ref: str
    name: str
    people: int
    day: str
    time: str


@dataclass
class ToolBox:
    """The tools of one episode: a shared database and this episode's reservation book."""

    db: VenueDatabase
    book: ReservationBook
    bookings: dict[str, Booking] = field(default_factory=dict)
    calls: int = 0

    def call(self, message: str, rng: np.random.Generator) -> str:
        """Run a tool call message and return its ``[result]`` line."""
        self.calls += 1
        m = TOOL_CALL_RE.match(message)
        if m is None:
            return "[result] error: a tool call starts with [search] or [book]"
        tool, args = m.group(1).lower(), parse_kv(m.group(2))
        if tool == "search":
            return self._search(args)
        if tool == "book":
            return self._book(args, rng)
        return f"[result] error: unknown tool [{tool}]; the tools are [search] and [book]"

    def _search(self, args: dict[str, str]) -> str:
        unknown = sorted(set(args) - set(CONSTRAINT_SLOTS))
        if unknown:
            return f"[result] search error: unknown slot {unknown[0]}; use area=, food=, price="
        if not args:
            return "[result] search error: give at least one of area=, food=, price="
        for slot, value in args.items():
            if value.lower() not in SLOT_VALUES[slot]:
                return (
                    f"[result] search error: unknown {slot} {value!r}; "
                    f"one of {', '.join(SLOT_VALUES[slot])}"
                )
        query = {s: args[s].lower() for s in CONSTRAINT_SLOTS if s in args}
        found = self.db.search(query)
        head = f"[result] search {format_kv(query)}: {len(found)} found"
        if not found:
            return head
        shown = " | ".join(format_venue(v) for v in found[:MAX_LISTED])
        return f"{head}, showing {min(len(found), MAX_LISTED)} | {shown}"

    def _book(self, args: dict[str, str], rng: np.random.Generator) -> str:
        missing = [s for s in ("name", "people", "day", "time") if s not in args]
        if missing:
            return f"[result] book error: missing {', '.join(missing)}"
        venue = self.db.get(args["name"])
        if venue is None:
            return f"[result] book error: no venue named {args['name']!r}"
        people, day, time = args["people"], args["day"].lower(), args["time"].zfill(5)
        if not people.isdigit() or not 1 <= int(people) <= MAX_PEOPLE:
            return f"[result] book error: people must be a whole number from 1 to {MAX_PEOPLE}"
        if day not in DAYS:
            return f"[result] book error: day must be one of {', '.join(DAYS)}"
        if time not in TIMES:
            return f"[result] book error: time must be one of {', '.join(TIMES)}"
        if not self.book.take(venue.name, day, time):
            return (
                f"[result] book failed: no table for {format_kv({'name': venue.name})} "
                f"people={int(people)} day={day} time={time}"
            )
        ref = "".join(rng.choice(_REF_ALPHABET, size=8))
        while not (any(c.isdigit() for c in ref) and any(c.isalpha() for c in ref)):
            ref = "".join(rng.choice(_REF_ALPHABET, size=8))
        self.bookings[ref] = Booking(ref, venue.name, int(people), day, time)
        return (
            f"[result] book ok: {format_kv({'name': venue.name})} people={int(people)} "
            f"day={day} time={time} ref={ref}"
        )


def format_venue(venue: Venue) -> str:
    return format_kv({f: getattr(venue, f) for f in VENUE_FIELDS})


def parse_search_result(text: str) -> tuple[dict[str, str], int, list[dict[str, str]]]:
    """``(query, n_found, venues shown)`` of a search result line, or ``({}, -1, [])``.

    >>> q, n, shown = parse_search_result(
    ...     '[result] search food=thai: 1 found, showing 1 | name="The Oak Mill" area=north')
    >>> q, n, shown[0]["name"]
    ({'food': 'thai'}, 1, 'The Oak Mill')
    """
    m = re.match(r"\[result\] search (.*?): (\d+) found", text)
    if m is None:
        return {}, -1, []
    parts = text.split(" | ")[1:]
    return parse_kv(m.group(1)), int(m.group(2)), [parse_kv(p) for p in parts]
