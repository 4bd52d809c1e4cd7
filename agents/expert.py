"""The rule-based expert: reads only the transcript, decides from the tracked state.

It uses the task's public parser and tracker (the shipped domain vocabulary), never the
user's hidden goal. Its order of business: learn every constraint, search, say so when
nothing matches, recommend the first match, book the table if one was asked for, then
tell the facts and the reference in one message.
"""

from __future__ import annotations

from agents.base import BaseAgent
from dialog_env.tasks.booking.domain import CONSTRAINT_SLOTS
from dialog_env.tasks.booking.tools import format_kv
from dialog_env.tasks.booking.tracker import DialogueState, track

__all__ = ["ExpertAgent", "describe"]

_ASK = {"area": "which area", "food": "what type of food", "price": "what price range"}
_FACT_WORDS = {"phone": "the phone number", "address": "the address", "postcode": "the postcode"}


def describe(query: dict[str, str]) -> str:
    """Words for a search query.

    >>> describe({"area": "north", "food": "thai"})
    'in the north serving thai food'
    """
    parts = {"area": "in the {}", "food": "serving {} food", "price": "in the {} price range"}
    return " ".join(parts[s].format(query[s]) for s in CONSTRAINT_SLOTS if s in query)


class ExpertAgent(BaseAgent):
    """Plays the booking task near-perfectly from the transcript alone."""

    name = "expert"
    paradigm = "reference"
    interface = "text"

    def act(self, observation: str) -> str:
        return self.decide(track(observation))

    def decide(self, s: DialogueState) -> str:
        missing = [slot for slot in CONSTRAINT_SLOTS if slot not in s.constraints]
        if missing:
            asks = [_ASK[slot] for slot in missing]
            head = ", ".join(asks[:-1]) + (" and " if len(asks) > 1 else "") + asks[-1]
            return f"Sure. Could you tell me {head} you would like?"
        query = s.query
        if s.search_query != query:
            return f"[search] {format_kv(query)}"
        if s.search_found == 0:
            if s.nomatch_told != query:
                return f"I'm sorry, there is no restaurant {describe(query)}."
            return "Would you like to change any of your requirements?"
        names = [v["name"] for v in s.search_venues]
        if s.offered not in names:
            venue = s.search_venues[0]
            return f"{venue['name']} is a restaurant {describe(venue)}."
        if s.wants_booking and s.booking_complete():
            wanted = dict(name=s.offered, **{k: s.booking[k] for k in ("people", "day", "time")})
            attempt = s.last_attempt
            same = attempt is not None and all(getattr(attempt, k) == v for k, v in wanted.items())
            if not same:
                return f"[book] {format_kv(wanted)}"
            if not attempt.ok and s.fail_told < len([a for a in s.attempts if not a.ok]):
                return (
                    f"I'm sorry, there is no table at {s.offered} on {attempt.day} at "
                    f"{attempt.time}. Would another time work for you?"
                )
        return self._tell(s)

    def _tell(self, s: DialogueState) -> str:
        venue = next(v for v in s.search_venues if v["name"] == s.offered)
        parts = [
            f"{_FACT_WORDS[f]} of {s.offered} is {venue[f]}"
            for f in ("phone", "address", "postcode")
            if f in s.requested and f not in s.told_facts
        ]
        out = []
        if parts:
            text = "; ".join(parts)
            out.append(text[0].upper() + text[1:] + ".")
        attempt = s.last_attempt
        if attempt is not None and attempt.ok and attempt.ref not in s.told_refs:
            out.append(
                f"Your table for {attempt.people} on {attempt.day} at {attempt.time} "
                f"is booked. The reference number is {attempt.ref}."
            )
        if not out:
            return "Is there anything else I can help you with?"
        return " ".join(out)
