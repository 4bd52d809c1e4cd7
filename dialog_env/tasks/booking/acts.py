"""Dialogue acts of the booking task.

An act is an intent with slot-value pairs: ``inform(area=north, food=thai)``,
``request(phone=?)``. The user's policy thinks in acts, the voice turns acts into text,
and the parser reads text back into acts, so the three meet in this one type.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Act", "USER_INTENTS", "AGENT_INTENTS", "canonical"]

#: What the simulated user can do, in the order its sentences are voiced.
USER_INTENTS = (
    "reject",  # the offered venue breaks a constraint (an inform of the right value follows)
    "affirm",  # accepts the offered venue
    "inform",  # constraint values (or dontcare), or a time when the first one failed
    "book",  # asks for a table: people, day, time
    "request",  # asks for facts of the accepted venue: phone, address, postcode
    "negate",  # no booking wanted
    "insist",  # the agent claimed no match although there is one
    "reqrec",  # the agent listed several venues instead of recommending one
    "repeat",  # the agent's message made no sense to the user
    "thank_bye",  # goal met: ends the conversation
    "giveup_bye",  # patience ran out: ends the conversation
)

#: What the parser can find in an assistant message (tool calls are not acts).
AGENT_INTENTS = (
    "request",  # asks the user for a constraint or booking detail
    "offer",  # names exactly one venue
    "list",  # names several venues at once
    "inform",  # gives facts: phone, address, postcode
    "nomatch",  # says no venue fits
    "book_ok",  # tells a booking reference
    "book_fail",  # says the table could not be booked
    "reqmore",  # asks whether the user needs anything else
    "bye",
)


_ORDER: dict[str, int] = {}
for _i, _name in enumerate(USER_INTENTS + AGENT_INTENTS):
    _ORDER.setdefault(_name, _i)


@dataclass(frozen=True, order=True)
class Act:
    """An intent with sorted ``(slot, value)`` pairs; hashable and ordered."""

    intent: str
    slots: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(cls, intent: str, **slots: str) -> Act:
        return cls(intent, tuple(sorted(slots.items())))

    def get(self, slot: str, default: str | None = None) -> str | None:
        return dict(self.slots).get(slot, default)

    def __str__(self) -> str:
        inner = ", ".join(f"{s}={v}" for s, v in self.slots)
        return f"{self.intent}({inner})"


def canonical(acts: list[Act]) -> tuple[Act, ...]:
    """Acts in voicing order with duplicate intents merged, so equal meaning compares equal.

    >>> acts = canonical([Act.make("request", phone="?"), Act.make("inform", area="north"),
    ...                   Act.make("inform", food="thai")])
    >>> [str(a) for a in acts]
    ['inform(area=north, food=thai)', 'request(phone=?)']
    """
    merged: dict[str, dict[str, str]] = {}
    for act in acts:
        merged.setdefault(act.intent, {}).update(act.slots)
    return tuple(
        Act(intent, tuple(sorted(slots.items())))
        for intent, slots in sorted(merged.items(), key=lambda kv: _ORDER.get(kv[0], 99))
    )
