"""The dialogue state as a fixed-size vector, for policies that want numbers, not text."""

from __future__ import annotations

import numpy as np

from dialog_env.tasks.booking.acts import USER_INTENTS
from dialog_env.tasks.booking.domain import CONSTRAINT_SLOTS, FACT_SLOTS
from dialog_env.tasks.booking.tracker import DialogueState

__all__ = ["STATE_FEATURES", "state_vector"]

MAX_ASSISTANT_TURNS = 50  # the spec's step limit: the turn feature runs from 0 to 1

#: The name of every entry of :func:`state_vector`, in order.
STATE_FEATURES: tuple[str, ...] = (
    *(f"{s}_known" for s in CONSTRAINT_SLOTS),
    *(f"{s}_dontcare" for s in CONSTRAINT_SLOTS),
    *(f"{f}_requested" for f in FACT_SLOTS),
    *(f"{f}_told" for f in FACT_SLOTS),
    "wants_booking",
    "booking_details_complete",
    "searched_current_query",
    "search_found_none",
    "search_found_some",
    "nomatch_told",
    "offered_fits_search",
    "booking_attempted_as_asked",
    "booking_ok",
    "booking_failed",
    "failure_told",
    "reference_told",
    *(f"user_{intent}" for intent in USER_INTENTS),
    "last_turn_tool",
    "turn_fraction",
)


def state_vector(s: DialogueState) -> np.ndarray:
    """The tracked state as ``float32`` values in [0, 1], named by :data:`STATE_FEATURES`."""
    attempt = s.last_attempt
    searched = s.search_query == s.query and s.search_query is not None
    as_asked = (
        attempt is not None
        and all(getattr(attempt, k) == s.booking.get(k) for k in ("people", "day", "time"))
        and attempt.name == s.offered
    )
    intents = {a.intent for a in s.user_acts}
    values = [
        *(slot in s.constraints for slot in CONSTRAINT_SLOTS),
        *(s.constraints.get(slot) == "dontcare" for slot in CONSTRAINT_SLOTS),
        *(f in s.requested for f in FACT_SLOTS),
        *(f in s.told_facts for f in FACT_SLOTS),
        bool(s.wants_booking),
        s.booking_complete(),
        searched,
        searched and s.search_found == 0,
        searched and s.search_found > 0,
        s.nomatch_told is not None and s.nomatch_told == s.query,
        s.offered is not None and s.offered in [v.get("name") for v in s.search_venues],
        as_asked,
        attempt is not None and attempt.ok,
        attempt is not None and not attempt.ok,
        attempt is not None and not attempt.ok and s.fail_told >= sum(not a.ok for a in s.attempts),
        attempt is not None and attempt.ok and attempt.ref in s.told_refs,
        *(intent in intents for intent in USER_INTENTS),
        s.last_role == "tool",
        min(s.assistant_turns / MAX_ASSISTANT_TURNS, 1.0),
    ]
    return np.asarray(values, dtype=np.float32)
