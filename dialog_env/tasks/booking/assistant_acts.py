"""The assistant's dialogue acts and their realization as text, from the tracked state.

The act-level interface (``Discrete(len(ASSISTANT_ACTS))``) and the rule-based expert
both speak through :func:`realize`, so an act id and the expert's message for it are the
same text. An act that does not fit the state (offering before any search, say) is still
realized as a plausible message; the user then reacts to it as to any weak message.
"""

from __future__ import annotations

from dialog_env.tasks.booking.domain import BOOKING_SLOTS, CONSTRAINT_SLOTS
from dialog_env.tasks.booking.tools import format_kv
from dialog_env.tasks.booking.tracker import DialogueState

__all__ = ["ASSISTANT_ACTS", "act_id", "describe", "realize"]

#: The assistant's acts, in action-id order.
ASSISTANT_ACTS = (
    "ask_constraints",  # asks for every constraint not known yet (all of them if none is)
    "search",  # [search] with the known constraints
    "nomatch",  # says that nothing fits the known constraints
    "offer",  # recommends the first venue of the latest search
    "offer_next",  # recommends the venue after the one offered
    "book",  # [book] the offered venue with the people, day and time the user gave
    "book_fail",  # says the latest booking failed and asks for another time
    "inform",  # tells the requested facts of the offered venue and any untold reference
    "reqmore",  # asks whether the user needs anything else
    "bye",
)

_ASK = {"area": "which area", "food": "what type of food", "price": "what price range"}
_FACT_WORDS = {"phone": "the phone number", "address": "the address", "postcode": "the postcode"}


def act_id(name: str) -> int:
    """The action id of an act name.

    >>> act_id("search")
    1
    """
    return ASSISTANT_ACTS.index(name)


def describe(query: dict[str, str]) -> str:
    """Words for a search query or a venue.

    >>> describe({"area": "north", "food": "thai"})
    'in the north serving thai food'
    """
    parts = {"area": "in the {}", "food": "serving {} food", "price": "in the {} price range"}
    return " ".join(parts[s].format(query[s]) for s in CONSTRAINT_SLOTS if s in query)


def _offer(venue: dict[str, str] | None) -> str:
    if venue is None:
        return "I would recommend a restaurant in town."
    return f"{venue['name']} is a restaurant {describe(venue)}."


def _venue(state: DialogueState, offset: int) -> dict[str, str] | None:
    names = [v.get("name") for v in state.search_venues]
    if not names:
        return None
    i = names.index(state.offered) + offset if state.offered in names else 0
    return state.search_venues[i % len(names)]


def _inform(state: DialogueState) -> str:
    venue = next((v for v in state.search_venues if v.get("name") == state.offered), None)
    out = []
    if venue is not None:
        parts = [
            f"{_FACT_WORDS[f]} of {state.offered} is {venue[f]}"
            for f in ("phone", "address", "postcode")
            if f in state.requested and f not in state.told_facts and f in venue
        ]
        if parts:
            text = "; ".join(parts)
            out.append(text[0].upper() + text[1:] + ".")
    attempt = state.last_attempt
    if attempt is not None and attempt.ok and attempt.ref not in state.told_refs:
        out.append(
            f"Your table for {attempt.people} on {attempt.day} at {attempt.time} "
            f"is booked. The reference number is {attempt.ref}."
        )
    return " ".join(out) if out else realize("reqmore", state)


def realize(act: str, state: DialogueState) -> str:
    """The message for an assistant act in the given state."""
    if act == "ask_constraints":
        missing = [s for s in CONSTRAINT_SLOTS if s not in state.constraints] or list(
            CONSTRAINT_SLOTS
        )
        asks = [_ASK[s] for s in missing]
        head = ", ".join(asks[:-1]) + (" and " if len(asks) > 1 else "") + asks[-1]
        return f"Sure. Could you tell me {head} you would like?"
    if act == "search":
        return f"[search] {format_kv(state.query or {})}"
    if act == "nomatch":
        return f"I'm sorry, there is no restaurant {describe(state.query)}.".replace("  ", " ")
    if act == "offer":
        return _offer(_venue(state, 0))
    if act == "offer_next":
        return _offer(_venue(state, 1))
    if act == "book":
        details = {k: state.booking[k] for k in BOOKING_SLOTS if k in state.booking}
        return f"[book] {format_kv({'name': state.offered or '', **details})}"
    if act == "book_fail":
        a = state.last_attempt
        where = f" at {a.name} on {a.day} at {a.time}" if a is not None else ""
        return f"I'm sorry, there is no table{where}. Would another time work for you?"
    if act == "inform":
        return _inform(state)
    if act == "reqmore":
        return "Is there anything else I can help you with?"
    if act == "bye":
        return "Thank you for using our service. Goodbye!"
    raise ValueError(f"unknown assistant act {act!r}; the acts are {', '.join(ASSISTANT_ACTS)}")
