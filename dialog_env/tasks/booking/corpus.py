"""The pretraining corpus's records: dialogues with a randomly acting assistant, and act ->
text pairs.

The LM should learn the *language* of the task, not its policy, so the assistant in
these dialogues picks each of its moves at random (ask, search, offer, list, tell facts,
book, claim no match, ask for more, say goodbye, say nonsense), filling the move with
what the conversation has established only half of the time. The user is the task's own
agenda-based user voiced by the paraphrase grammar, and every user turn also becomes
``pairs_per_turn`` act -> delexicalized sentence pairs: the voice's training data.

The task yields records (:class:`DialogueRecord`, :class:`VoicePair`); how an LM reads
them is the trainer's business: ``baselines.pretrain.corpus_documents`` formats each as
one document of :mod:`dialog_env.lm.format`. Same ``CorpusConfig`` -> the same records,
and so the same documents byte for byte (everything is drawn from one seeded numpy
Generator), so the manifest's sha256 identifies the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dialog_env.tasks.booking.acts import Act
from dialog_env.tasks.booking.domain import (
    CONSTRAINT_SLOTS,
    DAYS,
    FACT_SLOTS,
    MAX_PEOPLE,
    SLOT_VALUES,
    TIMES,
)
from dialog_env.tasks.booking.paraphrase import turn_phrasing
from dialog_env.tasks.booking.task import BookingTask
from dialog_env.tasks.booking.tools import format_kv
from dialog_env.tasks.booking.tracker import DialogueState, track
from dialog_env.tasks.booking.voice import delexicalize, fill
from dialog_env.text import Turn

__all__ = [
    "CorpusConfig",
    "DialogueRecord",
    "RandomAssistant",
    "VoicePair",
    "corpus_records",
    "sample_user_turn",
]

_QUESTIONS = {
    "area": ("which area", "what part of town", "where"),
    "food": ("what type of food", "what kind of food", "which cuisine"),
    "price": ("what price range", "what budget"),
    "people": ("how many people",),
    "day": ("which day",),
    "time": ("what time",),
}
_ASK = ("Could you tell me {}?", "May I ask {}?", "Please tell me {}.", "Can you say {}?")
_ASK_Q = ("{} would you like?", "{} do you have in mind?")
_OFFER = (
    "How about {name}?",
    "{name} is a restaurant {desc}.",
    "I recommend {name}.",
    "{name} would suit you. It is {desc}.",
    "You might like {name}.",
)
_FACTS = {"phone": "the phone number", "address": "the address", "postcode": "the postcode"}
_OTHER = {
    "nomatch": (
        "I'm sorry, there is no restaurant {desc}.",
        "I couldn't find anything {desc}.",
        "Nothing matches that, I'm afraid.",
    ),
    "reqmore": (
        "Is there anything else I can help you with?",
        "Anything else?",
        "Can I help you with anything else?",
    ),
    "bye": ("Goodbye!", "Have a nice day, goodbye.", "Bye."),
    "book_ask": ("Would you like me to book a table?", "Shall I reserve a table for you?"),
    "nonsense": (
        "The weather is lovely today.",
        "Hmm.",
        "Let me think about that.",
        "I like turtles.",
        "OK.",
    ),
}
_DESC = {"area": "in the {}", "food": "serving {} food", "price": "in the {} price range"}


@dataclass(frozen=True)
class CorpusConfig:
    """What the corpus holds; the defaults are those of the shipped tiny model."""

    seed: int = 0  # seeds the one numpy Generator everything is drawn from
    dialogues: int = 4_000  # conversations with the random assistant
    pairs_per_turn: int = 1  # act -> sentence pairs written for each user turn
    sampled_turns: int = 90_000  # further pairs for user turns drawn by sample_user_turn
    grounded_share: float = 0.5  # chance that a move uses what the transcript established
    split: str = "train"  # goals of this split only: test goals stay unseen


@dataclass(frozen=True)
class DialogueRecord:
    """One whole conversation of the user with the random assistant."""

    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class VoicePair:
    """One user turn's acts, delexicalized (the voice's prompt), and a sentence voicing them."""

    acts: str
    sentence: str


def _describe(query: dict[str, str]) -> str:
    return " ".join(_DESC[s].format(query[s]) for s in CONSTRAINT_SLOTS if s in query)


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


class RandomAssistant:
    """An assistant whose every move is chosen at random (a uniform choice of move kind)."""

    MOVES = (
        "ask",
        "search",
        "offer",
        "list",
        "facts",
        "book",
        "book_ask",
        "nomatch",
        "reqmore",
        "bye",
        "nonsense",
    )

    def __init__(self, db, grounded_share: float = 0.5):
        self.db, self.grounded_share = db, grounded_share
        self.names = [v.name for v in db.venues]

    def act(self, turns: list[Turn], rng: np.random.Generator) -> str:
        state = track(turns)
        grounded = rng.random() < self.grounded_share
        move = _pick(self.MOVES, rng)
        # Goodbye ends the conversation: keep it rare so that dialogues have a middle.
        if move == "bye" and rng.random() < 0.7:
            move = "ask"
        return getattr(self, f"_{move}")(state, grounded, rng)

    def _venue(self, state: DialogueState, grounded: bool, rng) -> dict[str, str]:
        if grounded and state.search_venues:
            return state.search_venues[int(rng.integers(len(state.search_venues)))]
        if grounded and state.offered:
            venue = self.db.get(state.offered)
        else:
            venue = self.db.venues[int(rng.integers(len(self.db.venues)))]
        return {f: venue.fact(f) for f in ("name", *CONSTRAINT_SLOTS, *FACT_SLOTS)}

    def _ask(self, state, grounded, rng) -> str:
        slots = [s for s in _QUESTIONS if not grounded or s not in state.constraints]
        slots = slots or list(_QUESTIONS)
        k = 1 + int(rng.integers(min(3, len(slots))))
        chosen = [slots[i] for i in sorted(rng.choice(len(slots), size=k, replace=False))]
        words = [_pick(_QUESTIONS[s], rng) for s in chosen]
        if len(words) == 1 and rng.random() < 0.5:
            text = _pick(_ASK_Q, rng).format(words[0])
            return text[0].upper() + text[1:]
        return _pick(_ASK, rng).format(", ".join(words[:-1]) + " and " * (k > 1) + words[-1])

    def _search(self, state, grounded, rng) -> str:
        if grounded and state.query:
            return f"[search] {format_kv(state.query)}"
        slots = [s for s in CONSTRAINT_SLOTS if rng.random() < 0.5] or ["food"]
        return "[search] " + format_kv({s: _pick(SLOT_VALUES[s], rng) for s in slots})

    def _offer(self, state, grounded, rng) -> str:
        venue = self._venue(state, grounded, rng)
        return _pick(_OFFER, rng).format(name=venue["name"], desc=_describe(venue))

    def _list(self, state, grounded, rng) -> str:
        names = [self.names[int(i)] for i in rng.choice(len(self.names), 2, replace=False)]
        return f"There are {names[0]} and {names[1]}."

    def _facts(self, state, grounded, rng) -> str:
        venue = self._venue(state, grounded, rng)
        wanted = sorted(state.requested) if grounded and state.requested else None
        facts = wanted or [_pick(FACT_SLOTS, rng)]
        parts = [f"{_FACTS[f]} of {venue['name']} is {venue[f]}" for f in facts]
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."

    def _book(self, state, grounded, rng) -> str:
        venue = self._venue(state, grounded, rng)
        details = {
            "people": str(int(rng.integers(1, MAX_PEOPLE + 1))),
            "day": _pick(DAYS, rng),
            "time": _pick(TIMES, rng),
        }
        if grounded:
            details.update(state.booking)
        return "[book] " + format_kv({"name": venue["name"], **details})

    def _book_ask(self, state, grounded, rng) -> str:
        attempt = state.last_attempt
        if grounded and attempt is not None and attempt.ok:
            return f"Your table at {attempt.name} is booked. The reference number is {attempt.ref}."
        if grounded and attempt is not None:
            return f"I'm sorry, there is no table at {attempt.name} at {attempt.time}."
        return _pick(_OTHER["book_ask"], rng)

    def _nomatch(self, state, grounded, rng) -> str:
        query = state.query if grounded else {"food": _pick(SLOT_VALUES["food"], rng)}
        return _pick(_OTHER["nomatch"], rng).format(desc=_describe(query) or "like that")

    def _reqmore(self, state, grounded, rng) -> str:
        return _pick(_OTHER["reqmore"], rng)

    def _bye(self, state, grounded, rng) -> str:
        return _pick(_OTHER["bye"], rng)

    def _nonsense(self, state, grounded, rng) -> str:
        return _pick(_OTHER["nonsense"], rng)


class _RecordingGrammarVoice:
    """Voices with the grammar and keeps each turn's (acts, delexicalized sentences)."""

    def __init__(self, pairs_per_turn: int):
        self.pairs_per_turn = pairs_per_turn
        self.pairs: list[tuple[str, str]] = []

    def voice(self, acts: Sequence[Act], rng: np.random.Generator) -> tuple[str, bool]:
        prompt, values = delexicalize(acts)
        sentences = [turn_phrasing(acts, rng) for _ in range(max(1, self.pairs_per_turn))]
        self.pairs += [(prompt, s) for s in sentences[: self.pairs_per_turn]]
        return fill(sentences[0], values), False


def corpus_records(config: CorpusConfig = CorpusConfig()) -> Iterator[DialogueRecord | VoicePair]:
    """The corpus in order: each dialogue followed by its voice pairs, then
    ``sampled_turns`` pairs of sampled user turns.

    >>> records = list(corpus_records(CorpusConfig(dialogues=1, sampled_turns=1)))
    >>> type(records[0]).__name__, records[0].turns[0].role, type(records[-1]).__name__
    ('DialogueRecord', 'user', 'VoicePair')
    """
    rng = np.random.default_rng(config.seed)
    voice = _RecordingGrammarVoice(config.pairs_per_turn)
    task = BookingTask(split=config.split, voice=voice, max_turns=12)
    assistant = RandomAssistant(task.db, config.grounded_share)
    for _ in range(config.dialogues):
        voice.pairs.clear()
        turns = task.reset(rng)
        while not task.user.done and len(turns) < 40:
            message = assistant.act(turns, rng)
            turns.append(Turn("assistant", message))
            turns += task.step(message, rng).turns
        yield DialogueRecord(tuple(turns))
        for prompt, sentence in voice.pairs:
            yield VoicePair(prompt, sentence)
    for _ in range(config.sampled_turns):
        acts = sample_user_turn(rng)
        yield VoicePair(delexicalize(acts)[0], turn_phrasing(acts, rng))


def sample_user_turn(rng: np.random.Generator) -> list[Act]:
    """A plausible user turn of any shape, so rare shapes get their share of pairs.

    Random-assistant dialogues are dominated by confusion (``repeat``, ``reject``); an
    assistant that does its job draws ``affirm`` + ``request`` + ``book`` turns instead.
    """
    kind = _pick(
        ("inform", "inform", "inform", "reject", "affirm", "request", "book_time", "fixed"), rng
    )

    def facts() -> dict[str, str]:
        chosen = [f for f in FACT_SLOTS if rng.random() < 0.5] or [_pick(FACT_SLOTS, rng)]
        return {f: "?" for f in chosen}

    booking = {"people": "1", "day": DAYS[0], "time": TIMES[0]}
    if kind == "inform":
        slots = [s for s in CONSTRAINT_SLOTS if rng.random() < 0.6] or [
            _pick(CONSTRAINT_SLOTS, rng)
        ]
        turn = [
            Act.make(
                "inform",
                **{s: "dontcare" if rng.random() < 0.3 else SLOT_VALUES[s][0] for s in slots},
            )
        ]
        extra = rng.random()
        if extra < 0.2:
            turn.append(Act.make("book", **booking))
        elif extra < 0.35:
            turn.append(Act("negate"))
        return turn
    if kind == "reject":
        slot = _pick(CONSTRAINT_SLOTS, rng)
        return [Act("reject"), Act.make("inform", **{slot: SLOT_VALUES[slot][0]})]
    if kind in ("affirm", "request", "book_time"):
        turn = {
            "affirm": [Act("affirm")],
            "request": [],
            "book_time": [Act.make("book", time=TIMES[0])],
        }[kind]
        if kind == "request" or rng.random() < 0.7:
            turn.append(Act.make("request", **facts()))
        if kind != "book_time" and (rng.random() < 0.5 or not turn):
            turn.append(Act.make("book", **booking))
        return turn
    return [
        Act(
            _pick(
                ("affirm", "negate", "insist", "reqrec", "repeat", "thank_bye", "giveup_bye"), rng
            )
        )
    ]
