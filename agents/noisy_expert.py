"""The noisy expert: the expert with a human demonstrator's slips, for imitation data.

Per episode it may forget one of the facts the user asks for (telling it only when asked
again); per message it may ask a question it already has the answer to, or slip into a
random act. Success drops, turns grow, and some demonstrations fail: the raw material of
"SFT on noisy demos" and "filtered SFT" (train on the successful ones only).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.base import BaseAgent
from agents.expert import expert_act
from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS, act_id, realize
from dialog_env.tasks.booking.tracker import DialogueState, track

__all__ = ["NoisyExpertAgent", "Noise"]


@dataclass(frozen=True)
class Noise:
    """How noisy the demonstrator is; every probability is per message unless noted."""

    redundant_question: float = 0.2  # asks for constraints again
    forget_fact: float = 0.4  # per episode: leaves one requested fact out of its first answer
    slip: float = 0.2  # a random act instead of the right one


class NoisyExpertAgent(BaseAgent):
    """The expert with seeded noise (``reset(seed=...)`` fixes it)."""

    name = "noisy-expert"
    paradigm = "reference"
    interface = "text"

    def __init__(self, noise: Noise = Noise()):
        super().__init__()
        self.noise = noise
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.forgets = self.rng.random() < self.noise.forget_fact
        self.forgotten: str | None = None

    def decide(self, state: DialogueState) -> str:
        act = expert_act(state)
        r = self.rng.random()
        if r < self.noise.slip:
            return ASSISTANT_ACTS[int(self.rng.integers(len(ASSISTANT_ACTS)))]
        if r < self.noise.slip + self.noise.redundant_question and state.constraints:
            return "ask_constraints"
        return act

    def _message(self, state: DialogueState, act: str) -> str:
        if act == "inform" and self.forgets and self.forgotten is None:
            pending = sorted(state.requested - state.told_facts)
            if len(pending) > 1:  # leave one out, once: the user will ask again
                self.forgotten = pending[int(self.rng.integers(len(pending)))]
                state.requested.discard(self.forgotten)
                try:
                    return realize(act, state)
                finally:
                    state.requested.add(self.forgotten)
        return realize(act, state)

    def act(self, observation: str) -> str:
        state = track(observation)
        return self._message(state, self.decide(state))

    def act_id(self, observation: str) -> int:
        return act_id(self.decide(track(observation)))
