"""User goals of the booking task and the train/test split.

A goal holds 1-3 constraints (area/food/price), the facts the user wants (phone, address,
postcode) and maybe a booking (people, day, time). Some goals have no matching venue and
carry a fallback (one constraint the user is willing to change); some bookings are sure to
fail at the first time and carry another time the user then accepts.

The split is compositional: a goal's *constraint combination* (the set of slot=value pairs)
is hashed into train or test, so ``split="test"`` goals use combinations that never occur
in train goals. The hash is sha256, never Python's ``hash``, so it is the same in every
process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dialog_env.tasks.booking.domain import (
    CONSTRAINT_SLOTS,
    DAYS,
    FACT_SLOTS,
    MAX_PEOPLE,
    SLOT_VALUES,
    TIMES,
    ReservationBook,
    VenueDatabase,
)

__all__ = ["Goal", "GoalSampler", "combination_split", "SPLITS"]

SPLITS = ("train", "test")
TEST_SHARE_BUCKETS = 4  # one combination in four is held out for test
NOMATCH_SHARE = 0.15
BOOKING_SHARE = 0.5
FAIL_FIRST_SHARE = 0.3
N_CONSTRAINTS_CDF = (0.2, 0.65, 1.0)  # 1, 2 or 3 constraints
N_REQUESTS_CDF = (0.2, 0.55, 0.85, 1.0)  # 0-3 requested facts


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _weighted(rng: np.random.Generator, cdf: Sequence[float]) -> int:
    """An index drawn with the probabilities whose running sums are ``cdf``."""
    u = rng.random()
    return next(i for i, c in enumerate(cdf) if u < c)


def combination_split(constraints: dict[str, str]) -> str:
    """``"train"`` or ``"test"`` for a constraint combination, by a stable hash.

    >>> combination_split({"food": "thai", "area": "north"}) == combination_split(
    ...     {"area": "north", "food": "thai"})
    True
    """
    key = "|".join(f"{s}={constraints[s]}" for s in sorted(constraints))
    digest = hashlib.sha256(key.encode()).digest()
    return "test" if digest[0] % TEST_SHARE_BUCKETS == 0 else "train"


@dataclass(frozen=True)
class Goal:
    """What the simulated user wants; see the module docstring."""

    constraints: dict[str, str]
    requests: tuple[str, ...]
    fallback: tuple[str, str] | None = None  # (slot, value) to switch to when nothing matches
    people: int | None = None
    day: str | None = None
    time: str | None = None
    alt_time: str | None = None  # set when the first time is full at every fitting venue

    @property
    def wants_booking(self) -> bool:
        return self.people is not None

    def final_constraints(self) -> dict[str, str]:
        """The constraints after the fallback, if the goal has one."""
        if self.fallback is None:
            return dict(self.constraints)
        slot, value = self.fallback
        return {**self.constraints, slot: value}

    def as_dict(self) -> dict:
        """Plain JSON-ready data (lists for tuples)."""
        return {
            "constraints": dict(self.constraints),
            "requests": list(self.requests),
            "fallback": list(self.fallback) if self.fallback else None,
            "people": self.people,
            "day": self.day,
            "time": self.time,
            "alt_time": self.alt_time,
        }


class GoalSampler:
    """Draws goals for one split from a numpy Generator (the env's ``np_random``)."""

    def __init__(self, db: VenueDatabase, book: ReservationBook, split: str = "train"):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.db, self.book, self.split = db, book, split

    def sample(self, rng: np.random.Generator) -> Goal:
        while True:
            goal = self._try(rng)
            if goal is not None:
                return goal

    def _constraints(self, rng: np.random.Generator) -> dict[str, str]:
        n = _weighted(rng, N_CONSTRAINTS_CDF) + 1
        slots = sorted(CONSTRAINT_SLOTS[i] for i in rng.permutation(len(CONSTRAINT_SLOTS))[:n])
        return {s: _pick(rng, SLOT_VALUES[s]) for s in slots}

    def _try(self, rng: np.random.Generator) -> Goal | None:
        want_nomatch = rng.random() < NOMATCH_SHARE
        constraints = self._constraints(rng)
        if combination_split(constraints) != self.split:
            return None
        matches = self.db.search(constraints)
        fallback = None
        if want_nomatch:
            if matches:
                return None
            options = [
                (slot, value)
                for slot in sorted(constraints)
                for value in SLOT_VALUES[slot]
                if value != constraints[slot] and self.db.search({**constraints, slot: value})
            ]
            if not options:
                return None
            fallback = options[int(rng.integers(len(options)))]  # (slot, value) of str
            matches = self.db.search({**constraints, fallback[0]: fallback[1]})
        elif not matches:
            return None
        n_req = _weighted(rng, N_REQUESTS_CDF)
        requests = tuple(sorted(FACT_SLOTS[i] for i in rng.permutation(len(FACT_SLOTS))[:n_req]))
        goal = Goal(constraints=constraints, requests=requests, fallback=fallback)
        if rng.random() >= BOOKING_SHARE:
            return goal
        return self._with_booking(goal, matches, rng)

    def _with_booking(self, goal: Goal, matches: list, rng: np.random.Generator) -> Goal | None:
        # The outcome of a booking must not depend on which fitting venue the agent picks:
        # a good time is free at every fitting venue, a failing time is full at all of them.
        people = int(rng.integers(1, MAX_PEOPLE + 1))
        day = _pick(rng, DAYS)
        free = [t for t in TIMES if all(self.book.free(v.name, day, t) > 0 for v in matches)]
        full = [t for t in TIMES if all(self.book.free(v.name, day, t) == 0 for v in matches)]
        if not free:
            return None
        if full and rng.random() < FAIL_FIRST_SHARE:
            time, alt_time = _pick(rng, full), _pick(rng, free)
        else:
            time, alt_time = _pick(rng, free), None
        return replace(goal, people=people, day=day, time=time, alt_time=alt_time)
