"""A rule-based dialogue state tracker: what a transcript says, as structured state.

It reads every turn of a transcript with the task's own parser and tool-result format,
so it works on any agent's conversation. The rule-based agents decide from it, and the
act-level interface turns it into a state vector.

User turns are read by an NLU: by default the rule-based parser
(:func:`~dialog_env.tasks.booking.parser.parse_user`); any callable from a sentence to
its acts can take its place, such as a learned slot tagger's
:meth:`~dialog_env.tasks.booking.tagger.SlotTagger.read` (``BookingTask(nlu="tagger")``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from dialog_env.tasks.booking.acts import Act
from dialog_env.tasks.booking.domain import BOOKING_SLOTS
from dialog_env.tasks.booking.parser import Lexicon, get_lexicon, parse_agent, parse_user
from dialog_env.tasks.booking.tools import is_tool_call, parse_kv, parse_search_result
from dialog_env.text import Turn, parse_transcript

__all__ = ["NLU", "BookAttempt", "DialogueState", "IncrementalTracker", "track"]

#: What reads a user turn into acts for the tracker (``None``: the rule-based parser).
NLU = Callable[[str], tuple[Act, ...]]

_BOOK_RESULT_RE = re.compile(r"\[result\] book (ok|failed): (?:no table for )?(.*)$")


@dataclass(frozen=True)
class BookAttempt:
    ok: bool
    name: str
    people: str
    day: str
    time: str
    ref: str | None = None


@dataclass
class DialogueState:
    """Everything the transcript has established so far."""

    constraints: dict[str, str] = field(default_factory=dict)  # value or "dontcare"
    requested: set[str] = field(default_factory=set)  # facts the user asked for
    booking: dict[str, str] = field(default_factory=dict)  # people/day/time the user gave
    wants_booking: bool | None = None
    search_query: dict[str, str] | None = None  # the latest search...
    search_found: int = -1  # ...how many matched...
    search_venues: list[dict[str, str]] = field(default_factory=list)  # ...and those shown
    nomatch_told: dict[str, str] | None = None  # query the assistant said "no match" for
    offered: str | None = None
    told_facts: set[str] = field(default_factory=set)  # facts told about the offered venue
    attempts: list[BookAttempt] = field(default_factory=list)
    told_refs: set[str] = field(default_factory=set)
    fail_told: int = 0  # failed attempts the assistant has told the user about
    user_acts: tuple = ()  # the acts of the latest user turn
    last_role: str | None = None
    assistant_turns: int = 0

    @property
    def query(self) -> dict[str, str]:
        """The search the constraints call for (``dontcare`` left out)."""
        return {s: v for s, v in sorted(self.constraints.items()) if v != "dontcare"}

    @property
    def last_attempt(self) -> BookAttempt | None:
        return self.attempts[-1] if self.attempts else None

    def booking_complete(self) -> bool:
        return all(s in self.booking for s in BOOKING_SLOTS)

    def _user(self, text: str, lex: Lexicon, nlu: NLU | None) -> None:
        acts = parse_user(text, lex) if nlu is None else nlu(text)
        self.user_acts = acts
        for act in acts:
            slots = dict(act.slots)
            if act.intent == "inform":
                self.constraints.update(slots)
            elif act.intent == "request":
                self.requested.update(slots)
            elif act.intent == "book":
                self.wants_booking = True
                self.booking.update(slots)
            elif act.intent == "negate":
                self.wants_booking = False

    def _assistant(self, text: str, lex: Lexicon) -> None:
        self.assistant_turns += 1
        if is_tool_call(text):
            return
        for act in parse_agent(text, lex):
            slots = dict(act.slots)
            if act.intent == "offer" and slots["name"] != self.offered:
                self.offered, self.told_facts = slots["name"], set()
            elif act.intent == "inform":
                self.told_facts.update(slots)
            elif act.intent == "book_ok":
                self.told_refs.update(slots["ref"].split("|"))
            elif act.intent == "book_fail":
                self.fail_told = sum(not a.ok for a in self.attempts)
            elif act.intent == "nomatch":
                self.nomatch_told = self.query

    def _tool(self, text: str) -> None:
        query, found, venues = parse_search_result(text)
        if found >= 0:
            self.search_query, self.search_found, self.search_venues = query, found, venues
            return
        m = _BOOK_RESULT_RE.match(text)
        if m:
            kv = parse_kv(m.group(2))
            self.attempts.append(
                BookAttempt(
                    m.group(1) == "ok",
                    kv.get("name", ""),
                    kv.get("people", ""),
                    kv.get("day", ""),
                    kv.get("time", ""),
                    kv.get("ref"),
                )
            )

    def update(self, turn: Turn, lexicon: Lexicon | None = None, nlu: NLU | None = None) -> None:
        """Read one more turn (a user turn through ``nlu``, by default the parser)."""
        lex = lexicon or get_lexicon()
        if turn.role == "user":
            self._user(turn.text, lex, nlu)
        elif turn.role == "assistant":
            self._assistant(turn.text, lex)
        elif turn.role == "tool":
            self._tool(turn.text)
        self.last_role = turn.role


def track(
    transcript: str | list[Turn], lexicon: Lexicon | None = None, nlu: NLU | None = None
) -> DialogueState:
    """The state after every turn of a transcript (an observation string or turns), its
    user turns read by ``nlu`` (default: the rule-based parser)."""
    turns = parse_transcript(transcript) if isinstance(transcript, str) else transcript
    state = DialogueState()
    lex = lexicon or get_lexicon()
    for turn in turns:
        state.update(turn, lex, nlu)
    return state


class IncrementalTracker:
    """Keeps a :class:`DialogueState` in step with a growing list of turns.

    Wrappers see the whole turn list in every ``info``; this reads only the new ones,
    user turns through ``nlu`` (default: the rule-based parser).
    """

    def __init__(self, lexicon: Lexicon | None = None, nlu: NLU | None = None):
        self.lexicon = lexicon or get_lexicon()
        self.nlu = nlu
        self.reset()

    def reset(self) -> None:
        self.state = DialogueState()
        self.seen = 0

    def sync(self, turns: list[dict[str, str]]) -> DialogueState:
        for turn in turns[self.seen :]:
            self.state.update(Turn(turn["role"], turn["text"]), self.lexicon, self.nlu)
        self.seen = len(turns)
        return self.state
