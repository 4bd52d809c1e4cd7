"""The random agent: plausible messages picked at random, a floor for every table."""

from __future__ import annotations

from agents.base import BaseAgent
from dialog_env.tasks.booking.domain import (
    DAYS,
    FACT_SLOTS,
    MAX_PEOPLE,
    SLOT_VALUES,
    TIMES,
    load_database,
)
from dialog_env.tasks.booking.tools import format_kv

__all__ = ["RandomAgent"]

_QUESTIONS = (
    "Which area would you like?",
    "What type of food would you like?",
    "What price range would you like?",
    "How many people will there be?",
    "Which day would you like?",
    "What time would you like?",
    "Would you like me to book a table?",
)


class RandomAgent(BaseAgent):
    """Each message is one of: a question, a search, an offer, facts, a booking, bye."""

    name = "random"
    paradigm = "reference"
    interface = "text"
    tasks = ("booking", "chat")  # its messages are plausible turns of either

    def __init__(self) -> None:
        super().__init__()
        self.venues = load_database()[0].venues

    def act(self, observation: str) -> str:
        r = self.rng
        venue = self.venues[int(r.integers(len(self.venues)))]
        kind = int(r.integers(7))
        if kind == 0:
            return str(r.choice(_QUESTIONS))
        if kind == 1:
            slots = [s for s in SLOT_VALUES if r.random() < 0.5] or ["food"]
            return "[search] " + format_kv({s: str(r.choice(SLOT_VALUES[s])) for s in slots})
        if kind == 2:
            return f"How about {venue.name}?"
        if kind == 3:
            fact = str(r.choice(FACT_SLOTS))
            return f"The {fact} of {venue.name} is {venue.fact(fact)}."
        if kind == 4:
            return "[book] " + format_kv(
                {
                    "name": venue.name,
                    "people": str(int(r.integers(1, MAX_PEOPLE + 1))),
                    "day": str(r.choice(DAYS)),
                    "time": str(r.choice(TIMES)),
                }
            )
        if kind == 5:
            return "Is there anything else I can help you with?"
        return "Goodbye!"
