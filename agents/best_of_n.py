"""Best-of-n against the reward model: sample n replies, send the one the RM scores highest.

The simplest way to optimize a learned reward, without training: the base LM agent (an SFT
checkpoint) writes ``n`` candidate replies (its greedy one and ``n - 1`` sampled at
``temperature``), the chat task's reward model (:mod:`dialog_env.tasks.chat.reward_model`)
scores each against the conversation, and the best goes out. A tool call is not a reply
(the RM scores replies to the user): when the base's greedy message is a tool call, it is
sent as it is. Best-of-n moves the policy away from its base by at most
``log n - (n - 1) / n`` nats (Stiennon et al. 2020), so its gold score against n is the
over-optimization curve of inference-time optimization.

A checkpoint directory holds only ``config.json`` (and a ``manifest.json``)::

    {"agent": "best-of-n", "base": "sft-chat", "n": 8, "temperature": 1.0,
     "paradigm": "best-of-n", "interface": "text", "env_id": "Dialog-Chat-v1"}

``base`` names a sibling checkpoint directory (a shipped name, never a path: nothing
outside the checkpoints' folder is reached). The entry's model hash covers the config,
the base's directory and the reward model's, so a change in any of them is another model.

Randomness: one ``torch.Generator`` per agent instance, seeded from ``reset(seed)``; the
evaluator gives every episode its own instance and seed (agents without a batched
``act_batch`` of their own), so an episode's replies do not depend on the batch size.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from agents.base import BaseAgent
from agents.checkpoint import MAX_BEST_OF_N, read_config

__all__ = ["BestOfNAgent", "MAX_N"]

#: The most candidates per reply a config may ask for.
MAX_N = MAX_BEST_OF_N


@cache
def _shared_base(path: str):
    from agents.lm_agent import LMAgent

    return LMAgent.load(Path(path))


@cache
def _shared_reward_model(path: str):
    from dialog_env.tasks.chat.reward_model import RewardModel

    return RewardModel.load(Path(path))


class BestOfNAgent(BaseAgent):
    """Sends the best of ``n`` candidate replies of ``base`` under ``reward_model``.

    Args:
        base: an :class:`~agents.lm_agent.LMAgent` (its model writes the candidates).
        reward_model: a :class:`~dialog_env.tasks.chat.reward_model.RewardModel`.
        n: candidates per reply (1: the base's greedy reply, the base agent itself).
        temperature: of the ``n - 1`` sampled candidates.
    """

    paradigm = "best-of-n"
    interface = "text"
    tasks = ("chat",)

    def __init__(
        self,
        base: Any,
        reward_model: Any,
        n: int = 8,
        temperature: float = 1.0,
        name: str = "best-of-n",
    ):
        import torch

        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
            raise ValueError(f"n must be an integer in 1-{MAX_N}, got {n!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.base, self.reward_model = base, reward_model
        self.n, self.temperature, self.name = n, float(temperature), name
        self.generator = torch.Generator().manual_seed(0)
        #: Set by :meth:`load`: the hash of everything that decides the replies.
        self.model_sha256: str | None = None

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> BestOfNAgent:
        from dialog_env.tasks.chat.reward_model import SHIPPED_RM_DIR
        from leaderboard.agent_card import directory_sha256

        path = Path(path)
        config = read_config(path)
        base_dir = path.parent / config["base"]
        if not base_dir.is_dir():
            raise ValueError(f"{path / 'config.json'}: no base checkpoint {config['base']!r}")
        agent = cls(
            _shared_base(str(base_dir.resolve())),
            _shared_reward_model(str(Path(SHIPPED_RM_DIR).resolve())),
            n=config.get("n", 8),
            temperature=config.get("temperature", 1.0),
            name=path.name,
        )
        parts = [directory_sha256(p) for p in (path, base_dir, Path(SHIPPED_RM_DIR))]
        agent.model_sha256 = hashlib.sha256(" ".join(parts).encode()).hexdigest()
        return agent

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.generator.manual_seed(int(self.rng.integers(2**63 - 1)))

    def candidates(self, observation: str) -> list[str]:
        """The base's greedy message, then ``n - 1`` sampled ones (possibly repeated)."""
        import torch

        from agents.lm_agent import encode_context
        from dialog_env.lm.generation import batched_decode

        base = self.base
        prompt = encode_context(base.codec, observation, base.context, base.max_new_tokens)
        stop_ids, pad_id = sorted(base.codec.end_ids), base.codec.pad_id
        greedy = batched_decode(base.model, [prompt], base.max_new_tokens, stop_ids, pad_id)
        texts = [base.codec.decode_message(base._strip_end(greedy.tokens[0]))]
        if self.n > 1:

            def sample(logprobs: torch.Tensor, t: int, rows) -> torch.Tensor:
                probs = (logprobs / self.temperature).softmax(-1)
                return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)

            drawn = batched_decode(
                base.model,
                [prompt] * (self.n - 1),
                base.max_new_tokens,
                stop_ids,
                pad_id,
                sample,
            )
            texts += [base.codec.decode_message(base._strip_end(t)) for t in drawn.tokens]
        return texts

    def act(self, observation: str) -> str:
        import numpy as np

        from dialog_env.tasks.booking.tools import is_tool_call
        from dialog_env.text import parse_transcript

        texts = self.candidates(observation)
        if is_tool_call(texts[0]):
            return texts[0]
        replies = [t for t in texts if not is_tool_call(t)]
        context = [{"role": t.role, "text": t.text} for t in parse_transcript(observation)]
        scores = np.asarray(self.reward_model.score([context] * len(replies), replies))
        return replies[int(np.argmax(scores))]  # the first of equal bests: the greedy one
