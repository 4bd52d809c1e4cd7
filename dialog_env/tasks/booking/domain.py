"""The booking domain: slot vocabularies, venues and the reservation book.

The data in ``data/domain.json`` is generated once by
``python -m dialog_env.tasks.booking.generate`` from a fixed seed and shipped; this
module only reads it. Every episode starts from the same shipped reservation book and
works on its own copy, so an episode can never leak into the next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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

    def search(self, constraints: dict[str, str]) -> list[Venue]:
        return [v for v in self.venues if v.matches(constraints)]

    def get(self, name: str) -> Venue | None:
        return self.by_name.get(name.lower())

    def __len__(self) -> int:
        return len(self.venues)


class ReservationBook:
    """Free tables per venue, day and time; ``book`` takes one table.

    ``tables[name][day_index][time_index]`` is the number of free tables; 0 means full.
    """

    def __init__(self, tables: dict[str, list[list[int]]]):
        self.tables = {name: [list(row) for row in days] for name, days in tables.items()}

    def copy(self) -> ReservationBook:
        return ReservationBook(self.tables)

    def free(self, name: str, day: str, time: str) -> int:
        return self.tables[name][DAYS.index(day)][TIMES.index(time)]

    def take(self, name: str, day: str, time: str) -> bool:
        """Take one table if there is one; return whether it was taken."""
        row = self.tables[name][DAYS.index(day)]
        t = TIMES.index(time)
        if row[t] <= 0:
            return False
        row[t] -= 1
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
