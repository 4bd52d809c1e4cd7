"""The booking domain: slot vocabularies, venues and the reservation book.

The data in ``data/domain.json`` is generated once by
``python -m dialog_env.tasks.booking.generate`` from a fixed seed and shipped; this
module only reads it. Every episode starts from the same shipped reservation book and
works on its own copy, so an episode can never leak into the next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

__all__ = [
    "AREAS",
    "BOOKING_SLOTS",
    "CONSTRAINT_SLOTS",
    "DAYS",
    "FACT_SLOTS",
    "FOODS",
    "MAX_PEOPLE",
    "PRICES",
    "SLOT_VALUES",
    "TIMES",
    "DOMAIN_FILE",
    "ReservationBook",
    "Venue",
    "VenueDatabase",
    "load_database",
]

AREAS = ("centre", "north", "south", "east", "west")
FOODS = (
    "british",
    "chinese",
    "french",
    "greek",
    "indian",
    "italian",
    "japanese",
    "korean",
    "lebanese",
    "mexican",
    "spanish",
    "thai",
    "turkish",
    "vietnamese",
)
PRICES = ("cheap", "moderate", "expensive")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TIMES = tuple(f"{h}:{m}" for h in range(17, 22) for m in ("00", "30"))
MAX_PEOPLE = 8

CONSTRAINT_SLOTS = ("area", "food", "price")
FACT_SLOTS = ("phone", "address", "postcode")
BOOKING_SLOTS = ("people", "day", "time")
SLOT_VALUES: dict[str, tuple[str, ...]] = {"area": AREAS, "food": FOODS, "price": PRICES}

DOMAIN_FILE = Path(__file__).with_name("data") / "domain.json"


@dataclass(frozen=True)
class Venue:
    """One restaurant of the database."""

    name: str
    area: str
    food: str
    price: str
    phone: str
    address: str
    postcode: str

    def matches(self, constraints: dict[str, str]) -> bool:
        """True when every constraint (``dontcare`` excepted) holds for this venue."""
        return all(v == "dontcare" or getattr(self, s) == v for s, v in constraints.items())

    def fact(self, slot: str) -> str:
        return getattr(self, slot)


class VenueDatabase:
    """The venues, searchable by constraints; results come sorted by name."""

    def __init__(self, venues: list[Venue]):
        self.venues = tuple(sorted(venues, key=lambda v: v.name))
        self.by_name = {v.name.lower(): v for v in self.venues}
        if len(self.by_name) != len(self.venues):
            raise ValueError("venue names must be unique")
        # slot -> value -> indices of the venues with that value; searches intersect these.
        self._index: dict[str, dict[str, frozenset[int]]] = {
            slot: {
                value: frozenset(i for i, v in enumerate(self.venues) if getattr(v, slot) == value)
                for value in values
            }
            for slot, values in SLOT_VALUES.items()
        }
        self._cache: dict[tuple, tuple[Venue, ...]] = {}

    def search(self, constraints: dict[str, str]) -> list[Venue]:
        """The venues that fit every constraint (``dontcare`` ignored), sorted by name."""
        key = tuple(sorted(constraints.items()))
        hit = self._cache.get(key)
        if hit is None:
            ids = set(range(len(self.venues)))
            for slot, value in key:
                if value != "dontcare":
                    ids &= self._index.get(slot, {}).get(value, frozenset())
            hit = self._cache[key] = tuple(self.venues[i] for i in sorted(ids))
        return list(hit)

    def get(self, name: str) -> Venue | None:
        return self.by_name.get(name.lower())

    def renamed(self, names: dict[str, str]) -> VenueDatabase:
        """The same venues under other names (``names``: old name -> new name, a
        bijection on the venues' names; facts, areas, foods and prices stay).

        >>> db, _ = load_database()
        >>> a, b = db.venues[0].name, db.venues[1].name
        >>> swapped = db.renamed({a: b, b: a})
        >>> swapped.get(b).phone == db.get(a).phone, len(swapped) == len(db)
        (True, True)
        """
        return VenueDatabase([replace(v, name=names.get(v.name, v.name)) for v in self.venues])

    def shuffled_names(self, rng) -> dict[str, str]:
        """A random bijection old name -> new name on the venues' names (one
        ``rng.permutation`` draw), for :meth:`renamed`: the ``venue_names="shuffled"``
        episodes of the booking and chat tasks."""
        names = [v.name for v in self.venues]
        return dict(zip(names, (names[i] for i in rng.permutation(len(names))), strict=True))

    def __len__(self) -> int:
        return len(self.venues)


class ReservationBook:
    """Free tables per venue, day and time; ``take`` takes one table.

    The shipped counts are shared and never change; a book only records what was taken
    from them, so a fresh copy for each episode costs nothing.
    """

    def __init__(self, tables: dict[str, list[list[int]]], taken: dict | None = None):
        self._shipped = {name: tuple(tuple(row) for row in days) for name, days in tables.items()}
        self._taken: dict[tuple[str, str, str], int] = dict(taken or {})

    def copy(self) -> ReservationBook:
        book = ReservationBook.__new__(ReservationBook)
        book._shipped, book._taken = self._shipped, dict(self._taken)
        return book

    @property
    def tables(self) -> dict[str, list[list[int]]]:
        """Free tables as ``tables[name][day_index][time_index]``; 0 means full."""
        return {
            name: [[self.free(name, d, t) for t in TIMES] for d in DAYS] for name in self._shipped
        }

    def renamed(self, names: dict[str, str]) -> ReservationBook:
        """The same free tables under other venue names (``names``: old -> new)."""
        book = ReservationBook.__new__(ReservationBook)
        book._shipped = {names.get(n, n): rows for n, rows in self._shipped.items()}
        book._taken = {(names.get(n, n), d, t): k for (n, d, t), k in self._taken.items()}
        return book

    def free(self, name: str, day: str, time: str) -> int:
        shipped = self._shipped[name][DAYS.index(day)][TIMES.index(time)]
        return shipped - self._taken.get((name, day, time), 0)

    def take(self, name: str, day: str, time: str) -> bool:
        """Take one table if there is one; return whether it was taken."""
        if self.free(name, day, time) <= 0:
            return False
        self._taken[name, day, time] = self._taken.get((name, day, time), 0) + 1
        return True


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[VenueDatabase, ReservationBook]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    venues = [Venue(**v) for v in data["venues"]]
    tables = {
        name: [[int(c) for c in day] for day in days] for name, days in data["tables"].items()
    }
    return VenueDatabase(venues), ReservationBook(tables)


def load_database(path: Path = DOMAIN_FILE) -> tuple[VenueDatabase, ReservationBook]:
    """The shipped database and a fresh copy of the shipped reservation book."""
    db, book = _load(str(path))
    return db, book.copy()
