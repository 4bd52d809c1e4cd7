"""The simulated user: an agenda-based policy over dialogue acts.

The user knows its goal and what the agent has told it. Each assistant message is read
by the parser into acts; the user answers the questions it was asked, checks offered
venues against its constraints, collects the facts it wants, asks for its table, and
leaves when the goal is met (``thank_bye``) or its patience is spent (``giveup_bye``).

Patience counts *unproductive* assistant messages: ones after which the user knows
nothing new and the agent learned nothing new. Redundant questions, wrong offers,
false "no match" claims and gibberish all spend it; ``max_turns`` caps the number of
messages the user will read at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dialog_env.tasks.booking.acts import Act
from dialog_env.tasks.booking.domain import BOOKING_SLOTS, CONSTRAINT_SLOTS, VenueDatabase
from dialog_env.tasks.booking.goals import Goal
from dialog_env.tasks.booking.tools import Booking

__all__ = ["AgendaUser"]

OPENING_SHARE = 0.6  # chance that each constraint is in the opening sentence


class AgendaUser:
    """One episode's user. ``open`` starts the conversation, ``respond`` answers a message."""

    def __init__(
        self,
        goal: Goal,
        db: VenueDatabase,
        bookings: dict[str, Booking],
        patience: int = 4,
        max_turns: int = 20,
    ):
        self.goal, self.db, self.bookings = goal, db, bookings
        self.patience, self.max_turns = patience, max_turns
        self.constraints = dict(goal.constraints)
        self.told: set[str] = set()
        self.fallback_used = False
        self.accepted: str | None = None
        self.received: dict[str, str] = {}
        self.informed: list[tuple[str, str]] = []  # every fact the agent told, for precision
        self.alt_given = False
        self.asked_booking = False
        self.negated = False
        self.booked_ref: str | None = None
        self.wasted = 0
        self.turns = 0
        self.done = False
        self.satisfied = False

    # -- the goal as the user sees it now ------------------------------------------------
    @property
    def booking_time(self) -> str | None:
        return self.goal.alt_time if self.alt_given else self.goal.time

    def _book_act(self) -> Act:
        g = self.goal
        return Act.make("book", people=str(g.people), day=g.day, time=self.booking_time)

    def pending_facts(self) -> list[str]:
        return [r for r in self.goal.requests if r not in self.received]

    def goal_met(self) -> bool:
        return (
            self.accepted is not None
            and not self.pending_facts()
            and (not self.goal.wants_booking or self.booked_ref is not None)
        )

    def valid_booking(self, booking: Booking | None) -> bool:
        g = self.goal
        return (
            booking is not None
            and booking.name == self.accepted
            and booking.people == g.people
            and booking.day == g.day
            and booking.time in (g.time, g.alt_time)
        )

    # -- the conversation ---------------------------------------------------------------
    def open(self, rng: np.random.Generator) -> list[Act]:
        slots = [s for s in sorted(self.constraints) if rng.random() < OPENING_SHARE]
        if not slots:
            slots = [sorted(self.constraints)[int(rng.integers(len(self.constraints)))]]
        self.told.update(slots)
        return [Act.make("inform", **{s: self.constraints[s] for s in slots})]

    def respond(self, agent_acts: Sequence[Act]) -> list[Act]:
        """Update the user's state from the agent's acts and return the user's reply."""
        if self.done:
            raise RuntimeError("the user has already left the conversation")
        self.turns += 1
        by_intent = {a.intent: a for a in agent_acts}
        out: list[Act] = []
        progress = False
        accepted_now = False

        if "offer" in by_intent:
            name = by_intent["offer"].get("name")
            venue = self.db.get(name)
            if venue is not None and venue.matches(self.constraints):
                if self.accepted != venue.name:
                    self.accepted, self.received, self.booked_ref = venue.name, {}, None
                    progress = accepted_now = True
            elif venue is not None:
                wrong = next(
                    s
                    for s in CONSTRAINT_SLOTS
                    if s in self.constraints and venue.fact(s) != self.constraints[s]
                )
                out += [Act("reject"), Act.make("inform", **{wrong: self.constraints[wrong]})]
                progress = wrong not in self.told
                self.told.add(wrong)
        elif "list" in by_intent:
            out.append(Act("reqrec"))

        if "inform" in by_intent and "list" not in by_intent:
            progress |= self._take_facts(by_intent["inform"])
        if "book_ok" in by_intent and self.goal.wants_booking and self.booked_ref is None:
            for ref in by_intent["book_ok"].get("ref", "").split("|"):
                if self.valid_booking(self.bookings.get(ref)):
                    self.booked_ref, progress = ref, True
                    break
        if (
            "book_fail" in by_intent
            and self.goal.wants_booking
            and self.goal.alt_time
            and not self.alt_given
            and self.accepted is not None
        ):
            self.alt_given = progress = True
            out.append(Act.make("book", time=self.goal.alt_time))
        if "nomatch" in by_intent and "offer" not in by_intent:
            progress |= self._nomatch(out)
        if "request" in by_intent:
            progress |= self._answer(by_intent["request"], out)

        if self.accepted is not None and not self.goal_met():
            intents = {a.intent for a in out}
            pending = self.pending_facts()
            if pending and "request" not in intents:
                out.append(Act.make("request", **{s: "?" for s in pending}))
            if self.goal.wants_booking and self.booked_ref is None and "book" not in intents:
                self.asked_booking = True
                out.append(self._book_act())
        if accepted_now:
            out.insert(0, Act("affirm"))

        if self.goal_met():
            self.done = self.satisfied = True
            return [Act("thank_bye")]
        if "bye" in by_intent:
            self.done = True
            return [Act("giveup_bye")]
        if not progress:
            self.wasted += 1
        if self.wasted >= self.patience or self.turns >= self.max_turns:
            self.done = True
            return [Act("giveup_bye")]
        if not out:
            if agent_acts and self.accepted is None:  # understood, but no help: restate
                out.append(Act.make("inform", **self.constraints))
            else:
                out.append(Act("repeat"))
        return out

    def _take_facts(self, inform: Act) -> bool:
        progress = False
        venue = self.db.get(self.accepted) if self.accepted else None
        for slot, values in inform.slots:
            for value in values.split("|"):
                self.informed.append((slot, value))
                if (
                    venue is not None
                    and slot in self.goal.requests
                    and slot not in self.received
                    and value == venue.fact(slot)
                ):
                    self.received[slot] = value
                    progress = True
        return progress

    def _nomatch(self, out: list[Act]) -> bool:
        if self.db.search(self.constraints):
            out.append(Act("insist"))
            return False
        slot, value = self.goal.fallback  # a goal without a match always has a fallback
        self.constraints[slot] = value
        self.fallback_used = True
        self.told.add(slot)
        out.append(Act.make("inform", **{slot: value}))
        return True

    def _answer(self, request: Act, out: list[Act]) -> bool:
        asked = dict(request.slots)
        progress = False
        informs = {}
        for slot in CONSTRAINT_SLOTS:
            if slot in asked:
                informs[slot] = self.constraints.get(slot, "dontcare")
                progress |= slot not in self.told
                self.told.add(slot)
        if informs:
            out.append(Act.make("inform", **informs))
        if any(s in asked for s in (*BOOKING_SLOTS, "book")):
            if self.goal.wants_booking:
                if self.booked_ref is None:
                    progress |= not self.asked_booking
                    self.asked_booking = True
                    if "book" not in {a.intent for a in out}:
                        out.append(self._book_act())
            else:
                progress |= not self.negated
                self.negated = True
                out.append(Act("negate"))
        return progress
