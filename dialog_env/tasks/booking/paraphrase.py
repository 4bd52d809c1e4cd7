"""A paraphrase grammar for the user's acts: the many ways a person says the same thing.

The template voice says each act one way; people do not. This grammar lists several
delexicalized phrasings per user act (``I want [food] food in the [area].``), each of
which the task's own parser reads back as that act once the values are filled in
(``tests/test_lm_paraphrase.py`` checks every phrasing with every value). The
pretraining corpus is written with it, so the LM learns the *distribution* of phrasings,
and :class:`GrammarVoice` voices a user directly from it (no LM).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import permutations

import numpy as np

from dialog_env.tasks.booking.acts import Act, canonical
from dialog_env.tasks.booking.voice import delexicalize, fill

__all__ = ["GrammarVoice", "paraphrase", "phrasings", "turn_phrasing"]

_CONSTRAINTS = ("area", "food", "price")
# How each named constraint can follow a noun ("a restaurant in the [area]") ...
_POST = {
    "area": (
        "in the [area]",
        "in the [area] of town",
        "in the [area] part of town",
        "on the [area] side of town",
    ),
    "food": (
        "serving [food] food",
        "that serves [food] food",
        "with [food] food",
        "that does [food] food",
    ),
    "price": ("in the [price] price range", "with [price] prices", "that is [price]"),
}
_NOUNS = ("a restaurant", "a place", "somewhere to eat", "a place to eat")
_STATEMENT_OPENERS = (
    "I'm looking for",
    "I am looking for",
    "I want",
    "I need",
    "I'd like",
    "Please find me",
    "I would like",
)
_QUESTION_OPENERS = ("Can you find me", "Could you find me", "Do you have", "Is there")
_DONTCARE = {
    "area": (
        "I don't mind the area.",
        "Any area is fine.",
        "The area doesn't matter.",
        "I don't care about the area.",
    ),
    "food": (
        "I don't mind the type of food.",
        "Any type of food is fine.",
        "The food doesn't matter.",
        "I don't care about the food.",
    ),
    "price": (
        "I don't mind the price range.",
        "Any price range is fine.",
        "The price doesn't matter.",
        "I don't care about the price.",
    ),
}
_FIXED = {
    "reject": (
        "That is not what I asked for.",
        "That doesn't fit what I need.",
        "No, that's not right for me.",
        "Hmm, that won't do.",
        "That is not what I want.",
    ),
    "affirm": (
        "That sounds good.",
        "Sounds great.",
        "That works for me.",
        "Perfect.",
        "That will do nicely.",
        "Yes, that sounds fine.",
    ),
    "negate": (
        "I don't need a booking.",
        "No need to book.",
        "No booking, please.",
        "I don't want to book a table.",
        "I do not need to book.",
    ),
    "insist": (
        "I'm sure there is one. Could you check again?",
        "Please look again.",
        "There must be one. Can you check again?",
        "Are you sure? Please look again.",
    ),
    "reqrec": (
        "Which one would you recommend?",
        "Which one is best?",
        "Can you recommend one?",
        "Which one do you recommend?",
    ),
    "repeat": (
        "Sorry, I didn't understand that.",
        "Pardon?",
        "What do you mean?",
        "I did not understand that.",
        "Sorry, what do you mean?",
    ),
    "thank_bye": (
        "Thank you, goodbye.",
        "Thanks, bye.",
        "Thank you so much. Goodbye!",
        "That's all I need. Goodbye.",
        "Thanks a lot, bye!",
    ),
    "giveup_bye": (
        "Never mind, goodbye.",
        "Forget it, bye.",
        "I give up. Goodbye.",
        "Never mind, I'll look elsewhere. Goodbye.",
    ),
}
_FACT_WORDS = {
    "phone": ("phone number", "phone"),
    "address": ("address",),
    "postcode": ("postcode", "post code"),
}
_REQUEST = (
    "What is the {}?",
    "Could you give me the {}?",
    "Can I have the {}?",
    "I'd also like the {}.",
    "Could you tell me the {}?",
    "And the {}, please.",
    "What's the {}?",
)
_BOOK_FULL = (
    "Please book a table for [people] people on [day] at [time].",
    "I'd like to reserve a table for [people] on [day] at [time].",
    "Can you book it for [people] people on [day] at [time]?",
    "We are [people] people, on [day] at [time].",
    "Book me a table for [people] at [time] on [day], please.",
    "There will be [people] of us, on [day] at [time].",
    "A table for [people] people at [time] on [day], please.",
)
_BOOK_TIME = (
    "How about [time] instead?",
    "Can you try [time] instead?",
    "Let's try [time] then.",
    "Then [time], please.",
    "Is [time] possible?",
    "Please book it at [time] instead.",
)


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _inform_named(named: tuple[str, ...]) -> list[str]:
    """Every phrasing that names the constraints ``named`` (any order of their phrases)."""
    out = []
    for order in permutations(named):
        for i, noun in enumerate(_NOUNS):
            # Rotate the phrase choices with the noun so the list stays small but varied.
            posts = " ".join(_POST[s][(i + k) % len(_POST[s])] for k, s in enumerate(order))
            out += [f"{o} {noun} {posts}." for o in _STATEMENT_OPENERS[i::2]]
            out += [f"{o} {noun} {posts}?" for o in _QUESTION_OPENERS[i % 2 :: 2]]
    adj = " ".join(f"[{s}]" for s in ("price", "food") if s in named)
    tail = " in the [area]" if "area" in named else ""
    if "food" in named:
        out += [
            f"I'd like some {adj} food{tail}.",
            f"I want {adj} food{tail}.",
            f"{adj.capitalize()} food{tail}, please.",
        ]
    elif "price" in named:
        out += [f"Somewhere [price]{tail}, please.", f"I'd like something [price]{tail}."]
    else:
        out += ["The [area], please.", "I'd prefer the [area].", "Somewhere in the [area]."]
    if named == ("price",):
        out += ["Make it [price].", "Something [price] would be best."]
    if named == ("food",):
        out += ["[food], please.", "I feel like [food] food."]
    return [s[0].upper() + s[1:] for s in out]


@cache
def phrasings(act: Act) -> tuple[str, ...]:
    """All delexicalized phrasings of one user act.

    >>> phrasings(Act("affirm"))[:2]
    ('That sounds good.', 'Sounds great.')
    >>> "How about [time] instead?" in phrasings(Act.make("book", time="19:00"))
    True
    """
    slots = dict(act.slots)
    if act.intent in _FIXED:
        return _FIXED[act.intent]
    if act.intent == "inform":
        named = tuple(s for s in _CONSTRAINTS if s in slots and slots[s] != "dontcare")
        dontcare = [s for s in _CONSTRAINTS if slots.get(s) == "dontcare"]
        heads = _inform_named(named) if named else [""]
        tails = [""]
        for s in dontcare:
            tails = [f"{t} {d}".strip() for t in tails for d in _DONTCARE[s]]
        return tuple(f"{h} {t}".strip() for h in heads for t in tails)
    if act.intent == "request":
        facts = [s for s in ("phone", "address", "postcode") if s in slots]
        choices = [
            _join([_FACT_WORDS[f][k % len(_FACT_WORDS[f])] for f in facts]) for k in range(2)
        ]
        return tuple(dict.fromkeys(p.format(c) for p in _REQUEST for c in choices))
    if act.intent == "book":
        if set(slots) == {"people", "day", "time"}:
            return _BOOK_FULL
        if set(slots) == {"time"}:
            return _BOOK_TIME
        parts = {"people": "for [people] people", "day": "on [day]", "time": "at [time]"}
        detail = " ".join(parts[s] for s in ("people", "day", "time") if s in slots)
        return (f"Please book a table {detail}.", f"I'd like a table {detail}.")
    raise ValueError(f"the user has no act {act}")


def turn_phrasing(acts: Sequence[Act], rng: np.random.Generator) -> str:
    """One delexicalized sentence for a turn's acts, each act phrased at random."""
    out = []
    for act in canonical(list(acts)):
        options = phrasings(act)
        text = options[int(rng.integers(len(options)))]
        if act.intent == "request" and out and rng.random() < 0.3:
            text = "Also, " + text[0].lower() + text[1:]
        out.append(text)
    return " ".join(out)


def paraphrase(acts: Sequence[Act], rng: np.random.Generator) -> str:
    """A random phrasing of the turn with the act's values filled in.

    >>> paraphrase([Act.make("inform", food="thai")], np.random.default_rng(0)).count("thai")
    1
    """
    _, values = delexicalize(acts)
    return fill(turn_phrasing(acts, rng), values)


class GrammarVoice:
    """A :class:`~dialog_env.voicing.UserVoice` that samples the grammar itself.

    It never falls back: every phrasing reads back as its act by construction.
    """

    def voice(self, acts: Sequence[Act], rng: np.random.Generator) -> tuple[str, bool]:
        return paraphrase(acts, rng), False
