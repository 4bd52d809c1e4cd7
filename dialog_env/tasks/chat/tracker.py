"""The chat task's tool, tracker, assistant acts and state vector.

The tool is the booking task's ``[search]`` (and ``[book]``), plus a lookup by name
(``[search] name="The Amber Fig"``) so that an agent can learn a venue's facts. The
tracker reads a transcript with the chat parser and the search-result format; the act
interface realizes its three acts from the tracked state alone: ``search`` what the
current request needs, ``answer`` it from the venues the searches showed (the good
answerer, which never invents), or say ``goodbye``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dialog_env.tasks.booking.domain import Venue, VenueDatabase
from dialog_env.tasks.booking.tools import (
    TOOL_CALL_RE,
    ToolBox,
    format_kv,
    format_venue,
    is_tool_call,
    parse_kv,
    parse_search_result,
)
from dialog_env.tasks.chat.answers import good_reply
from dialog_env.tasks.chat.requests import ChatAct
from dialog_env.tasks.chat.voice import parse_chat_user

__all__ = [
    "ASSISTANT_ACTS",
    "STATE_FEATURES",
    "ChatState",
    "ChatTools",
    "ChatTracker",
    "needed_search",
    "realize",
    "state_vector",
]

ASSISTANT_ACTS = ("answer", "search", "goodbye")
STATE_FEATURES = (
    "request_recommend",
    "request_describe",
    "request_compare",
    "facts_known",
    "last_turn_user",
    "last_turn_tool",
    "replies_given",
)
_REPLIES_SCALE = 4  # replies_given saturates at this many replies


class ChatTools:
    """The booking task's tools with a name lookup added to ``[search]``."""

    def __init__(self, db: VenueDatabase, toolbox: ToolBox):
        self.db, self.toolbox = db, toolbox

    @property
    def calls(self) -> int:
        return self.toolbox.calls

    def call(self, message: str, rng: np.random.Generator) -> str:
        """The ``[result]`` line of a tool call message."""
        m = TOOL_CALL_RE.match(message)
        args = parse_kv(m.group(2)) if m else {}
        if m is None or m.group(1).lower() != "search" or "name" not in args:
            return self.toolbox.call(message, rng)
        self.toolbox.calls += 1
        if len(args) > 1:
            return "[result] search error: search by name= alone, or by area=, food=, price="
        venue = self.db.get(args["name"])
        head = f"[result] search {format_kv({'name': args['name']})}"
        return (
            f"{head}: 1 found, showing 1 | {format_venue(venue)}" if venue else f"{head}: 0 found"
        )


def _venue(fields: dict[str, str]) -> Venue | None:
    try:
        return Venue(**{k: fields[k] for k in Venue.__dataclass_fields__})
    except KeyError:
        return None


@dataclass
class ChatState:
    """What a chat transcript has established."""

    request: ChatAct | None = None  # the user's latest request
    known: dict[str, Venue] = field(default_factory=dict)  # lower-case name -> venue seen
    last_query: dict[str, str] | None = None
    last_role: str | None = None
    replies: int = 0  # assistant messages that were not tool calls


class ChatTracker:
    """Keeps a :class:`ChatState` in step with a growing list of turns."""

    def __init__(self, db: VenueDatabase):
        self.db = db
        self.reset()

    def reset(self) -> None:
        self.state, self._seen = ChatState(), 0

    def sync(self, turns: list[dict[str, str]]) -> ChatState:
        for turn in turns[self._seen :]:
            role, text = turn["role"], turn["text"]
            if role == "user":
                requests = [a for a in parse_chat_user(text, self.db) if a.is_request]
                self.state.request = requests[0] if requests else self.state.request
            elif role == "tool":
                query, _, shown = parse_search_result(text)
                self.state.last_query = query or None
                for fields in shown:
                    venue = _venue(fields)
                    if venue is not None:
                        self.state.known[venue.name.lower()] = venue
            elif not is_tool_call(text):
                self.state.replies += 1
            self.state.last_role = role
        self._seen = len(turns)
        return self.state


def needed_search(state: ChatState) -> str | None:
    """The ``[search]`` the current request still needs (by wishes for ``recommend``, by
    name for ``describe`` and ``compare``), or None when the known venues answer it."""
    request = state.request
    if request is None:
        return None
    if request.intent == "recommend":
        wishes = dict(request.wishes)
        if any(v.matches(wishes) for v in state.known.values()):
            return None
        return f"[search] {format_kv(wishes)}"
    for name in request.names:
        if name.lower() not in state.known:
            return f"[search] {format_kv({'name': name})}"
    return None


def realize(act: str, state: ChatState) -> str:
    """The message of an assistant act in ``state``."""
    if act == "goodbye":
        return "Thank you, goodbye!"
    if act == "search":
        return needed_search(state) or "[search] price=cheap"
    if state.request is None:
        return "Hello! What can I do for you?"
    return good_reply(state.request, state.known)


def state_vector(state: ChatState) -> np.ndarray:
    """The state as the float32 vector of :data:`STATE_FEATURES`, all in [0, 1]."""
    intent = state.request.intent if state.request else None
    return np.array(
        [
            intent == "recommend",
            intent == "describe",
            intent == "compare",
            intent is not None and needed_search(state) is None,
            state.last_role == "user",
            state.last_role == "tool",
            min(state.replies, _REPLIES_SCALE) / _REPLIES_SCALE,
        ],
        dtype=np.float32,
    )
