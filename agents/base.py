"""The Agent protocol: anything with ``reset`` and ``act`` is an agent.

Agents read observations (the transcript text) and write messages. ``act_batch`` lets
the evaluator drive many episodes at once; :class:`BaseAgent` gives a loop for agents
that have no faster way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Agent", "BaseAgent", "PARADIGMS", "INTERFACES"]

#: ``modular``: a pipeline with a learned NLU (the slot tagger) before the tracker and an
#: RL policy over its state; neither SFT nor RL on the board's verdict lines.
PARADIGMS = (
    "reference",
    "sft",
    "filtered-sft",
    "rl",
    "sft-rl",
    "zero-shot",
    "best-of-n",
    "modular",
)
INTERFACES = ("text", "token", "act")


@runtime_checkable
class Agent(Protocol):
    """What the evaluator and ``dialog-bench play`` need from an agent."""

    name: str
    paradigm: str  # one of PARADIGMS
    interface: str  # one of INTERFACES

    def reset(self, seed: int | None = None) -> None:
        """Start a new conversation; ``seed`` fixes any randomness of the agent."""

    def act(self, observation: str) -> str:
        """The next message, given the conversation so far."""


class BaseAgent:
    """Convenience base: a per-episode numpy Generator and a looping ``act_batch``."""

    name = "base"
    paradigm = "reference"
    interface = "text"
    #: The tasks (``dialog_env.registration.ENV_IDS[id]["task"]``) the agent plays.
    tasks: tuple[str, ...] = ("booking",)

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self.rng = np.random.default_rng()

    def reset(self, seed: int | None = None) -> None:
        self.rng = self._np.random.default_rng(seed)

    def act(self, observation: str) -> str:
        raise NotImplementedError

    def act_batch(self, observations: Sequence[str]) -> list[str]:
        return [self.act(o) for o in observations]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, paradigm={self.paradigm!r})"
