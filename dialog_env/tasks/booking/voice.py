"""The user's voice: acts in, text out.

Voicing is *delexicalized*: a turn's acts become a prompt with typed placeholders
(``inform(area=[area], food=[food])``), a voice writes a sentence that uses those
placeholders (``I want [food] food in the [area].``), and :func:`fill` puts the act's
values in. The template voice here is the reference and the fallback of every other
voice: one canonical sentence per act, and it is what the booking task hands other voices
(the LM voice) as its :class:`~dialog_env.voicing.TaskVoice`: the delexicalization, the
placeholders, the parser check (:meth:`TemplateVoice.reads_back`) and the plain-words
description of acts for chat models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from dialog_env.tasks.booking.acts import Act, canonical
from dialog_env.tasks.booking.parser import get_lexicon, parse_user
from dialog_env.voicing import UserVoice

__all__ = [
    "PLACEHOLDER_RE",
    "PLACEHOLDER_SLOTS",
    "PLACEHOLDER_TOKENS",
    "TemplateVoice",
    "UserVoice",
    "delexicalize",
    "describe_acts",
    "fill",
    "template_text",
]

PLACEHOLDER_SLOTS = ("area", "food", "price", "people", "day", "time")
#: The placeholders as the LM's tokenizer holds them, each one token.
PLACEHOLDER_TOKENS = tuple(f"[{slot}]" for slot in PLACEHOLDER_SLOTS)
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


_PLAIN = {
    "reject": "the restaurant the assistant offered is not what you asked for",
    "affirm": "the restaurant the assistant offered sounds good to you",
    "negate": "you do not want to book a table",
    "insist": "you are sure a matching restaurant exists and want the assistant to check again",
    "reqrec": "the assistant listed several restaurants and you want it to recommend one",
    "repeat": "you did not understand what the assistant said",
    "thank_bye": "you thank the assistant and say goodbye",
    "giveup_bye": "you give up and say goodbye (never mind)",
}


def describe_acts(acts: Sequence[Act]) -> str:
    """The acts in plain words, for chat models.

    >>> describe_acts([Act.make("inform", area="north", price="dontcare")])
    'you want a restaurant with the area [area]; you do not mind the price'
    """
    parts = []
    for act in canonical(list(acts)):
        slots = dict(act.slots)
        if act.intent in _PLAIN:
            parts.append(_PLAIN[act.intent])
        elif act.intent == "inform":
            named = [f"the {s} [{s}]" for s, v in slots.items() if v != "dontcare"]
            if named:
                parts.append("you want a restaurant with " + " and ".join(named))
            parts += [f"you do not mind the {s}" for s, v in slots.items() if v == "dontcare"]
        elif act.intent == "book":
            detail = ", ".join(f"{s} [{s}]" for s in ("people", "day", "time") if s in slots)
            parts.append(f"you want to book a table ({detail})")
        elif act.intent == "request":
            parts.append("you ask for the " + " and ".join(slots))
    return "; ".join(parts)


class TemplateVoice:
    """One canonical sentence per act; no language model, no randomness.

    It is also the booking task's :class:`~dialog_env.voicing.TaskVoice`: the other voices
    delexicalize, fill, check and fall back through it.
    """

    placeholder_tokens = PLACEHOLDER_TOKENS
    persona = "You are a customer chatting with a restaurant booking assistant."

    def __init__(self) -> None:
        self._sentences: dict[str, str] = {}  # delexicalized prompt -> its sentence

    def voice(self, acts: Sequence[Act], rng: np.random.Generator) -> tuple[str, bool]:
        prompt, values = delexicalize(acts)
        sentence = self._sentences.get(prompt)
        if sentence is None:
            sentence = self._sentences[prompt] = template_text(acts)
        return fill(sentence, values), False

    # -- the TaskVoice protocol: what other voices need of the booking task --------------
    def delexicalize(self, acts: Sequence[Act]) -> tuple[str, dict[str, str]]:
        return delexicalize(acts)

    def template(self, acts: Sequence[Act]) -> str:
        return template_text(acts)

    def fill(self, text: str, values: dict[str, str]) -> str:
        return fill(text, values)

    def placeholders(self, text: str) -> list[str]:
        return PLACEHOLDER_RE.findall(text)

    def reads_back(self, text: str, acts: Sequence[Act]) -> bool:
        """True when the parser reads ``text`` as exactly ``acts``.

        >>> TemplateVoice().reads_back("I want thai food.", [Act.make("inform", food="thai")])
        True
        """
        return parse_user(text, get_lexicon()) == canonical(list(acts))

    def describe(self, acts: Sequence[Act]) -> str:
        return describe_acts(acts)
