"""The chat user's acts and goals: open requests about the restaurant world.

A goal is a short list of requests (two or three), each one :class:`ChatAct`:

- ``recommend``: a venue for some wishes (one or two of area, food, price), e.g.
  ``recommend(area=north, food=thai)``; at least one venue of the database fits;
- ``describe``: facts about one venue (one or two of phone, address, postcode, area,
  food, price), e.g. ``describe(name=The Amber Fig, asks=phone+address)``;
- ``compare``: two venues on one of area, food, price.

The user also says ``thank`` (before its next request) and ``bye`` (after its last one).
Goals are drawn from the booking task's venue database (the same restaurant world): the
``train`` split asks about three venues in four, the ``test`` split about the fourth, so
no test goal is about a venue that a train goal names.

>>> from dialog_env.tasks.booking.domain import load_database
>>> import numpy as np
>>> db, _ = load_database()
>>> goal = sample_goal(db, np.random.default_rng(0), "train")
>>> 2 <= len(goal) <= 3 and all(a.intent in REQUEST_INTENTS for a in goal)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dialog_env.tasks.booking.domain import CONSTRAINT_SLOTS, Venue, VenueDatabase

__all__ = [
    "COMPARE_SLOTS",
    "DESCRIBE_SLOTS",
    "REQUEST_INTENTS",
    "SPLITS",
    "ChatAct",
    "canonical",
    "sample_goal",
    "split_venues",
]

REQUEST_INTENTS = ("recommend", "describe", "compare")
#: What a ``describe`` request may ask about a venue, in canonical order.
DESCRIBE_SLOTS = ("phone", "address", "postcode", "area", "food", "price")
#: What a ``compare`` request compares two venues on.
COMPARE_SLOTS = CONSTRAINT_SLOTS
SPLITS = ("train", "test")
_ORDER = {"thank": 0, "recommend": 1, "describe": 1, "compare": 1, "bye": 2}


@dataclass(frozen=True)
class ChatAct:
    """One act of the chat user; a request (:data:`REQUEST_INTENTS`), ``thank`` or ``bye``.

    >>> str(ChatAct("recommend", wishes=(("area", "north"), ("food", "thai"))))
    'recommend(area=north, food=thai)'
    >>> str(ChatAct("compare", names=("The Blue Fox", "The Happy Mill"), asks=("price",)))
    'compare(name=The Blue Fox, name=The Happy Mill, asks=price)'
    """

    intent: str
    wishes: tuple[tuple[str, str], ...] = ()  # recommend: (slot, value), CONSTRAINT_SLOTS order
    names: tuple[str, ...] = ()  # describe: one venue; compare: two
    asks: tuple[str, ...] = ()  # describe: DESCRIBE_SLOTS order; compare: one slot

    def __post_init__(self) -> None:
        if self.intent not in _ORDER:
            raise ValueError(f"the chat user has no act {self.intent!r}")

    @property
    def is_request(self) -> bool:
        return self.intent in REQUEST_INTENTS

    def __str__(self) -> str:
        parts = [f"{s}={v}" for s, v in self.wishes] + [f"name={n}" for n in self.names]
        if self.asks:
            parts.append("asks=" + "+".join(self.asks))
        return f"{self.intent}({', '.join(parts)})"

    def as_dict(self) -> dict:
        """JSON-ready form (for ``info["goal"]`` and preference records)."""
        return {
            "intent": self.intent,
            "wishes": dict(self.wishes),
            "names": list(self.names),
            "asks": list(self.asks),
        }


def canonical(acts: Sequence[ChatAct]) -> list[ChatAct]:
    """A turn's acts in the order the template says them: thanks, the request, goodbye."""
    return sorted(acts, key=lambda a: _ORDER[a.intent])


def split_venues(db: VenueDatabase, split: str) -> list[Venue]:
    """The venues a split's goals are about: every fourth venue (by name) is ``test``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [v for i, v in enumerate(db.venues) if (i % 4 == 3) == (split == "test")]


def _subset(rng: np.random.Generator, slots: Sequence[str], most: int) -> tuple[str, ...]:
    k = int(rng.integers(1, most + 1))
    picked = set(rng.choice(len(slots), size=k, replace=False).tolist())
    return tuple(s for i, s in enumerate(slots) if i in picked)


def _request(rng: np.random.Generator, venues: Sequence[Venue]) -> ChatAct:
    intent = REQUEST_INTENTS[int(rng.integers(len(REQUEST_INTENTS)))]
    first = venues[int(rng.integers(len(venues)))]
    if intent == "recommend":
        # Wishes read off a real venue, so that at least one venue fits them.
        slots = _subset(rng, CONSTRAINT_SLOTS, 2)
        return ChatAct("recommend", wishes=tuple((s, first.fact(s)) for s in slots))
    if intent == "describe":
        return ChatAct("describe", names=(first.name,), asks=_subset(rng, DESCRIBE_SLOTS, 2))
    others = [v for v in venues if v.name != first.name]
    second = others[int(rng.integers(len(others)))]
    slot = COMPARE_SLOTS[int(rng.integers(len(COMPARE_SLOTS)))]
    return ChatAct("compare", names=(first.name, second.name), asks=(slot,))


def sample_goal(db: VenueDatabase, rng: np.random.Generator, split: str) -> list[ChatAct]:
    """Two or three requests, each different, about the split's venues."""
    venues = split_venues(db, split)
    goal: list[ChatAct] = []
    count = int(rng.integers(2, 4))
    while len(goal) < count:
        request = _request(rng, venues)
        if request not in goal:
            goal.append(request)
    return goal
