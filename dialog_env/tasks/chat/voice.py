"""The chat user's template voice and the parser that reads its sentences back.

The voice is delexicalized as the booking voice is: a recommendation's wishes become the
placeholders ``[area]``, ``[food]`` and ``[price]`` (the booking task's tokens, which the
shipped tiny LM's tokenizer holds), venue names stay literal. :class:`ChatTemplateVoice`
is the task's :class:`~dialog_env.voicing.TaskVoice`; :func:`parse_chat_user` is its
parser, a few visible rules over the database's venue names and slot values.

>>> from dialog_env.tasks.booking.domain import load_database
>>> db, _ = load_database()
>>> voice = ChatTemplateVoice(db)
>>> acts = [ChatAct("thank"), ChatAct("recommend", wishes=(("area", "north"),))]
>>> voice.voice(acts, None)
('Thanks. Could you recommend a restaurant in the north?', False)
>>> parse_chat_user("Thanks. Could you recommend a restaurant in the north?", db) == acts
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from dialog_env.tasks.booking.domain import CONSTRAINT_SLOTS, SLOT_VALUES, VenueDatabase
from dialog_env.tasks.chat.requests import DESCRIBE_SLOTS, ChatAct, canonical

__all__ = [
    "PLACEHOLDER_TOKENS",
    "SLOT_WORDS",
    "ChatTemplateVoice",
    "name_pattern",
    "parse_chat_user",
]

PLACEHOLDER_TOKENS = tuple(f"[{slot}]" for slot in CONSTRAINT_SLOTS)
_PLACEHOLDER_RE = re.compile(r"\[(" + "|".join(CONSTRAINT_SLOTS) + r")\]")
#: How the user names each slot it asks about.
SLOT_WORDS = {
    "phone": "phone number",
    "address": "address",
    "postcode": "postcode",
    "area": "area",
    "food": "type of food",
    "price": "price range",
}
_ASK_CUES = {
    "phone": re.compile(r"\bphone\b|\bnumber\b"),
    "address": re.compile(r"\baddress\b"),
    "postcode": re.compile(r"\bpost ?code\b"),
    "area": re.compile(r"\barea\b|part of town"),
    "food": re.compile(r"\bfood\b|\bcuisine\b"),
    "price": re.compile(r"\bprice\b|\bexpensive\b|\bcheap\b"),
}
_BYE_RE = re.compile(r"\bgoodbye\b|\bbye\b")
_THANK_RE = re.compile(r"\bthanks\b|\bthank you\b")
_COMPARE_RE = re.compile(r"\bcompar|\bdiffer|\bversus\b|\bvs\b")
_RECOMMEND_RE = re.compile(r"\brecommend|\bsuggest|\blooking for\b|\bwant\b")
_WISH_PATTERNS = {
    slot: re.compile(r"\b(" + "|".join(values) + r")\b") for slot, values in SLOT_VALUES.items()
}
_PARTS = {
    "area": " in the [area]",
    "food": " serving [food] food",
    "price": " in the [price] price range",
}


@lru_cache(maxsize=4)
def name_pattern(db: VenueDatabase) -> re.Pattern[str]:
    """One regex for every venue name of ``db``, lower-cased, longest first."""
    names = sorted((v.name.lower() for v in db.venues), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def parse_chat_user(text: str, db: VenueDatabase) -> list[ChatAct]:
    """The acts of a user sentence: thanks, at most one request, goodbye (canonical order).

    Rules: ``goodbye``/``bye`` is ``bye`` (its thanks included), else ``thanks`` is
    ``thank``; two venue names and a comparison cue are ``compare``; one venue name and
    slot words are ``describe``; a recommendation cue with slot values is ``recommend``.
    """
    low = text.lower()
    acts: list[ChatAct] = []
    if _BYE_RE.search(low):
        acts.append(ChatAct("bye"))
    elif _THANK_RE.search(low):
        acts.append(ChatAct("thank"))
    names_re = name_pattern(db)
    found = [db.get(m.group(1)).name for m in names_re.finditer(low)]
    names = list(dict.fromkeys(found))
    rest = names_re.sub(" ", low)
    asks = tuple(s for s in DESCRIBE_SLOTS if _ASK_CUES[s].search(rest))
    if len(names) == 2 and _COMPARE_RE.search(rest):
        acts.append(
            ChatAct(
                "compare", names=tuple(names), asks=tuple(a for a in asks if a in CONSTRAINT_SLOTS)
            )
        )
    elif len(names) == 1 and asks:
        acts.append(ChatAct("describe", names=tuple(names), asks=asks))
    elif not names and _RECOMMEND_RE.search(rest):
        wishes = tuple(
            (slot, m.group(1)) for slot, rx in _WISH_PATTERNS.items() if (m := rx.search(rest))
        )
        if wishes:
            acts.append(ChatAct("recommend", wishes=wishes))
    return canonical(acts)


def _sentence(act: ChatAct) -> str:
    if act.intent == "thank":
        return "Thanks."
    if act.intent == "bye":
        return "Thank you, goodbye."
    if act.intent == "recommend":
        slots = dict(act.wishes)
        return "Could you recommend a restaurant" + "".join(_PARTS[s] for s in slots) + "?"
    if act.intent == "describe":
        return f"What is the {_join([SLOT_WORDS[s] for s in act.asks])} of {act.names[0]}?"
    first, second = act.names
    return f"How do {first} and {second} compare on {SLOT_WORDS[act.asks[0]]}?"


class ChatTemplateVoice:
    """One canonical sentence per act, no randomness; the chat task's ``TaskVoice``."""

    placeholder_tokens = PLACEHOLDER_TOKENS
    persona = (
        "You are a diner asking a restaurant assistant for recommendations, facts about "
        "restaurants and comparisons between them."
    )

    def __init__(self, db: VenueDatabase):
        self.db = db

    def voice(self, acts: Sequence[ChatAct], rng: np.random.Generator | None) -> tuple[str, bool]:
        sentence = self.template(acts)
        return self.fill(sentence, self.delexicalize(acts)[1]), False

    def delexicalize(self, acts: Sequence[ChatAct]) -> tuple[str, dict[str, str]]:
        """``recommend(area=[area])``-style prompt and the placeholder values.

        >>> ChatTemplateVoice(None).delexicalize([ChatAct("recommend", wishes=(("food", "thai"),))])
        ('recommend(food=[food])', {'food': 'thai'})
        """
        parts, values = [], {}
        for act in canonical(list(acts)):
            shown = ChatAct(
                act.intent, tuple((s, f"[{s}]") for s, _ in act.wishes), act.names, act.asks
            )
            values.update(act.wishes)
            parts.append(str(shown))
        return " ".join(parts), values

    def template(self, acts: Sequence[ChatAct]) -> str:
        return " ".join(_sentence(a) for a in canonical(list(acts)))

    def fill(self, text: str, values: dict[str, str]) -> str:
        return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    def placeholders(self, text: str) -> list[str]:
        return _PLACEHOLDER_RE.findall(text)

    def reads_back(self, text: str, acts: Sequence[ChatAct]) -> bool:
        return parse_chat_user(text, self.db) == canonical(list(acts))

    def describe(self, acts: Sequence[ChatAct]) -> str:
        """The acts in plain words, to prompt a chat model."""
        words = []
        for act in canonical(list(acts)):
            if act.intent == "thank":
                words.append("you thank the assistant")
            elif act.intent == "bye":
                words.append("you thank the assistant and say goodbye")
            elif act.intent == "recommend":
                wanted = " and ".join(f"the {s} [{s}]" for s, _ in act.wishes)
                words.append(f"you ask for a restaurant recommendation with {wanted}")
            elif act.intent == "describe":
                asked = _join([SLOT_WORDS[s] for s in act.asks])
                words.append(f"you ask for the {asked} of {act.names[0]}")
            else:
                words.append(
                    f"you ask how {act.names[0]} and {act.names[1]} compare on "
                    f"{SLOT_WORDS[act.asks[0]]}"
                )
        return "; ".join(words)
