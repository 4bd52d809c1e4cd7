"""The user's voice: acts in, text out.

Voicing is *delexicalized*: a turn's acts become a prompt with typed placeholders
(``inform(area=[area], food=[food])``), a voice writes a sentence that uses those
placeholders (``I want [food] food in the [area].``), and :func:`fill` puts the act's
values in. The template voice here is the reference and the fallback of every other
voice: one canonical sentence per act.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from dialog_env.tasks.booking.acts import Act, canonical

__all__ = [
    "PLACEHOLDER_RE",
    "TemplateVoice",
    "UserVoice",
    "delexicalize",
    "fill",
    "template_text",
]

PLACEHOLDER_SLOTS = ("area", "food", "price", "people", "day", "time")
PLACEHOLDER_RE = re.compile(r"\[(" + "|".join(PLACEHOLDER_SLOTS) + r")\]")
_DONTCARE_WORDS = {"area": "area", "food": "type of food", "price": "price range"}
_FACT_WORDS = {"phone": "phone number", "address": "address", "postcode": "postcode"}
_FIXED = {
    "reject": "That is not what I asked for.",
    "affirm": "That sounds good.",
    "negate": "I don't need a booking.",
    "insist": "I'm sure there is one. Could you check again?",
    "reqrec": "Which one would you recommend?",
    "repeat": "Sorry, I didn't understand that.",
    "thank_bye": "Thank you, goodbye.",
    "giveup_bye": "Never mind, goodbye.",
}


@runtime_checkable
class UserVoice(Protocol):
    """Anything that turns a user turn's acts into text.

    ``voice`` returns the text and whether it fell back to the template voice.
    """

    def voice(self, acts: Sequence[Act], rng: np.random.Generator) -> tuple[str, bool]: ...


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def delexicalize(acts: Sequence[Act]) -> tuple[str, dict[str, str]]:
    """The prompt form of a turn's acts and the values its placeholders stand for.

    >>> delexicalize([Act.make("inform", area="north", food="dontcare")])
    ('inform(area=[area], food=dontcare)', {'area': 'north'})
    """
    parts, values = [], {}
    for act in canonical(list(acts)):
        slots = []
        for slot, value in act.slots:
            if slot in PLACEHOLDER_SLOTS and value not in ("dontcare", "?"):
                slots.append(f"{slot}=[{slot}]")
                values[slot] = value
            else:
                slots.append(f"{slot}={value}")
        parts.append(f"{act.intent}({', '.join(slots)})")
    return " ".join(parts), values


def _sentence(act: Act) -> str:
    if act.intent in _FIXED:
        return _FIXED[act.intent]
    slots = dict(act.slots)
    if act.intent == "inform":
        out = []
        named = [s for s, v in slots.items() if v != "dontcare"]
        if named:
            parts = {
                "area": " in the [area]",
                "food": " serving [food] food",
                "price": " in the [price] price range",
            }
            out.append(
                "I'm looking for a restaurant"
                + "".join(parts[s] for s in ("area", "food", "price") if s in named)
                + "."
            )
        out += [
            f"I don't mind the {_DONTCARE_WORDS[s]}." for s, v in slots.items() if v == "dontcare"
        ]
        return " ".join(out)
    if act.intent == "book":
        detail = "".join(
            part
            for slot, part in (
                ("people", " for [people] people"),
                ("day", " on [day]"),
                ("time", " at [time]"),
            )
            if slot in slots
        )
        return f"Please book a table{detail}."
    if act.intent == "request":
        return f"What is the {_join([_FACT_WORDS[s] for s in slots])}?"
    raise ValueError(f"the user has no act {act}")


def template_text(acts: Sequence[Act]) -> str:
    """The canonical delexicalized sentence for a turn's acts.

    >>> template_text([Act.make("inform", price="cheap", area="north")])
    "I'm looking for a restaurant in the [area] in the [price] price range."
    """
    return " ".join(_sentence(a) for a in canonical(list(acts)))


def fill(text: str, values: dict[str, str]) -> str:
    """Put the values in for the placeholders; a placeholder without a value stays.

    >>> fill("A table for [people] on [day].", {"people": "4", "day": "friday"})
    'A table for 4 on friday.'
    """
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


class TemplateVoice:
    """One canonical sentence per act; no language model, no randomness."""

    def __init__(self) -> None:
        self._sentences: dict[str, str] = {}  # delexicalized prompt -> its sentence

    def voice(self, acts: Sequence[Act], rng: np.random.Generator) -> tuple[str, bool]:
        prompt, values = delexicalize(acts)
        sentence = self._sentences.get(prompt)
        if sentence is None:
            sentence = self._sentences[prompt] = template_text(acts)
        return fill(sentence, values), False
