"""The rule-based expert: reads only the transcript, decides from the tracked state.

It uses the task's public parser and tracker (the shipped domain vocabulary), never the
user's hidden goal. Its order of business: learn every constraint, search, say so when
nothing matches, recommend the first match, book the table if one was asked for, then
tell the facts and the reference in one message. It decides an assistant act
(:data:`~dialog_env.tasks.booking.assistant_acts.ASSISTANT_ACTS`) and speaks through the
same realizer as the act-level interface, so its text and its act ids are one episode.
"""

from __future__ import annotations

from agents.base import BaseAgent
from dialog_env.tasks.booking.assistant_acts import act_id, realize
from dialog_env.tasks.booking.domain import CONSTRAINT_SLOTS
from dialog_env.tasks.booking.tracker import DialogueState, track

__all__ = ["ExpertAgent", "expert_act"]


def expert_act(s: DialogueState) -> str:
    """The expert's assistant act for a tracked state."""
    if any(slot not in s.constraints for slot in CONSTRAINT_SLOTS):
        return "ask_constraints"
    if s.search_query != s.query:
        return "search"
    if s.search_found == 0:
        return "nomatch" if s.nomatch_told != s.query else "ask_constraints"
    if s.offered not in [v.get("name") for v in s.search_venues]:
        return "offer"
    if s.wants_booking and s.booking_complete():
        attempt = s.last_attempt
        wanted = {"name": s.offered, **{k: s.booking[k] for k in ("people", "day", "time")}}
        if attempt is None or any(getattr(attempt, k) != v for k, v in wanted.items()):
            return "book"
        if not attempt.ok and s.fail_told < sum(not a.ok for a in s.attempts):
            return "book_fail"
    return "inform"


class ExpertAgent(BaseAgent):
    """Plays the booking task near-perfectly from the transcript alone."""

    name = "expert"
    paradigm = "reference"
    interface = "text"

    def act(self, observation: str) -> str:
        state = track(observation)
        return realize(expert_act(state), state)

    def act_id(self, observation: str) -> int:
        """The same decision as an act-level action id."""
        return act_id(expert_act(track(observation)))
