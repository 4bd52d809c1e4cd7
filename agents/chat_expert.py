"""The chat task's rule-based answerer: search what the request needs, then answer.

It reads only the transcript, through the chat task's public tracker
(:class:`~dialog_env.tasks.chat.tracker.ChatTracker`), never the user's hidden goal nor the
gold judge: when the latest request names a venue it has not seen in a tool result (or
wishes no seen venue fits), it searches; otherwise it answers from the venues the searches
showed, with the good answerer that never invents. It speaks through the same realizer as
the chat act interface, so its text and its act ids are one episode.

>>> import gymnasium as gym, dialog_env
>>> env, agent = gym.make("Dialog-Chat-v1", reward="gold"), ChatExpertAgent()
>>> obs, info = env.reset(seed=0)
>>> agent.act(obs).startswith("[search] ")
True
"""

from __future__ import annotations

from agents.base import BaseAgent
from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.chat.tracker import ASSISTANT_ACTS, ChatTracker, needed_search, realize
from dialog_env.text import parse_transcript

__all__ = ["ChatExpertAgent"]


class ChatExpertAgent(BaseAgent):
    """Answers every chat request correctly from what its searches showed."""

    name = "chat-expert"
    paradigm = "reference"
    interface = "text"
    tasks = ("chat",)

    def __init__(self) -> None:
        super().__init__()
        self.db = load_database()[0]

    def _state(self, observation: str):
        tracker = ChatTracker(self.db)
        turns = [{"role": t.role, "text": t.text} for t in parse_transcript(observation)]
        return tracker.sync(turns)

    def act(self, observation: str) -> str:
        state = self._state(observation)
        return realize(ASSISTANT_ACTS[self.act_id(observation)], state)

    def act_id(self, observation: str) -> int:
        """The same decision as an act id of the chat act interface."""
        state = self._state(observation)
        act = "search" if needed_search(state) is not None else "answer"
        return ASSISTANT_ACTS.index(act)
