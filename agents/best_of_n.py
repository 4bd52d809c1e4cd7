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

``base`` names a shipped checkpoint or a folder inside the checkpoint, never a path
(:func:`~agents.checkpoint.resolve_named_dir`: nothing outside them is reached). The
entry's model hash covers the config, the base's directory and the reward model's, so a
change in any of them is another model.

Randomness: each draw samples by inverse CDF from uniforms of its own, drawn from a
``torch.Generator`` seeded by a hash of the conversation so far, the draw's number and
``sample_seed`` (:func:`dialog_env.lm.generation.inverse_cdf`); so a reply is a function of
the conversation alone, whether it is asked for alone (``act``) or in a batch of any
size (``act_batch``, one batched decode for all conversations, as the evaluator asks).

Prefill: the ``n - 1`` draws of a context share one prefill of it (its keys and values
copied ``n - 1`` ways, :func:`dialog_env.lm.sessions.decode_from_one_prefill`, or the
conversation's kept cache forked when the evaluator passes ``keys``), so ``n = 64`` costs
one read of the transcript and 63 continuations, not 63 reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from agents.base import BaseAgent
from agents.checkpoint import MAX_BEST_OF_N, read_config, resolve_named_dir

__all__ = ["BestOfNAgent", "MAX_N", "base_directory", "best_of_n_sha256"]

#: The most candidates per reply a config may ask for.
MAX_N = MAX_BEST_OF_N


def base_directory(path: str | Path, config: dict[str, Any]) -> Path:
    """The base checkpoint that the best-of-n ``config`` of checkpoint ``path`` names: a
    shipped one by name, else a folder inside ``path``
    (:func:`~agents.checkpoint.resolve_named_dir`; anything else is a ``ValueError``)."""
    from agents import shipped_checkpoints

    return resolve_named_dir(Path(path), "base", config["base"], shipped_checkpoints())


def best_of_n_sha256(path: str | Path, base_dir: str | Path) -> str:
    """The model hash of the best-of-n checkpoint at ``path`` with its base at
    ``base_dir``: a hash over everything that decides its replies (its own directory, its
    base's and the shipped reward model's), so a change in any of them is another model."""
    from dialog_env.lm.model_files import directory_sha256
    from dialog_env.tasks.chat.reward_model import SHIPPED_RM_DIR

    parts = [directory_sha256(p) for p in (Path(path), Path(base_dir), Path(SHIPPED_RM_DIR))]
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()


@cache
def _shared_base(path: str):
    from agents.lm_agent import LMAgent

    return LMAgent.load(Path(path))


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
        sample_seed: int = 0,
    ):
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
            raise ValueError(f"n must be an integer in 1-{MAX_N}, got {n!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.base, self.reward_model = base, reward_model
        self.n, self.temperature, self.name = n, float(temperature), name
        #: The draws are a function of the conversation and this seed alone (so
        #: ``reset`` has nothing to seed, and a batch gives what one at a time gives).
        self.sample_seed = int(sample_seed)
        #: Set by :meth:`load`: the hash of everything that decides the replies.
        self.model_sha256: str | None = None

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> BestOfNAgent:
        from dialog_env.tasks.chat.reward_model import SHIPPED_RM_DIR, RewardModel

        path = Path(path)
        config = read_config(path)
        base_dir = base_directory(path, config)
        agent = cls(
            _shared_base(str(base_dir.resolve())),
            RewardModel.load(SHIPPED_RM_DIR),  # cached per process by RewardModel.load
            n=config.get("n", 8),
            temperature=config.get("temperature", 1.0),
            name=path.name,
        )
        agent.model_sha256 = best_of_n_sha256(path, base_dir)
        return agent

    def end_episode(self, key) -> None:
        """Conversation ``key`` ended: the base frees its KV cache."""
        self.base.end_episode(key)

    def _draw_seed(self, observation: str, draw: int) -> int:
        digest = hashlib.sha256(f"{self.sample_seed}:{draw}:{observation}".encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def _greedy(self, observations: Sequence[str], keys=None) -> list[str]:
        return list(self.base.act_batch(observations, keys=keys))

    def _draws(self, observations: Sequence[str], keys=None) -> list[list[str]]:
        """The ``n - 1`` sampled candidates of each observation (:meth:`sample_replies`)."""
        return self.sample_replies(observations, self.n - 1, keys)

    def sample_replies(self, observations: Sequence[str], count: int, keys=None) -> list[list[str]]:
        """``count`` messages of the base sampled at ``temperature`` per observation, each
        draw from a generator seeded by the observation and the draw's number: what is
        drawn for a conversation does not depend on what else is in the batch, nor on
        ``count`` (draw ``j`` is the same for any ``count > j``; best-of-n's candidate
        ``j + 2``). The draws never read a prompt more than once: with ``keys`` (the
        conversations the greedy decode just continued) they start from each
        conversation's kept KV cache; without, each prompt is prefilled once and its keys
        and values copied ``count`` ways
        (:func:`~dialog_env.lm.sessions.decode_from_one_prefill`), not read ``count``
        times (the same draws as separate prefills, up to float rounding)."""
        import torch

        from agents.lm_agent import encode_context
        from dialog_env.lm.generation import inverse_cdf
        from dialog_env.lm.sessions import decode_from_one_prefill

        base, draws = self.base, count
        if draws == 0 or not observations:
            return [[] for _ in observations]
        prompt = [
            encode_context(base.codec, o, base.context, base.max_new_tokens) for o in observations
        ]
        uniforms = torch.stack(
            [
                torch.rand(
                    base.max_new_tokens,
                    generator=torch.Generator().manual_seed(self._draw_seed(o, j)),
                    dtype=torch.float64,
                )
                for o in observations
                for j in range(draws)
            ]
        )
        sample = inverse_cdf(uniforms, self.temperature)

        rows = [p for p in prompt for _ in range(draws)]
        stop_ids = sorted(base.codec.end_ids)
        forks = None
        if keys is not None and base.incremental:
            forks = [(key, "draw", j) for key in keys for j in range(draws)]
            for i, key in enumerate(keys):
                base.sessions.fork(key, forks[i * draws : (i + 1) * draws])
        try:
            if forks is None:  # one prefill per prompt, its keys and values copied per draw
                decoded = decode_from_one_prefill(
                    base.model, prompt, draws, base.max_new_tokens, stop_ids, sample
                )
            else:
                decoded = base.sessions.decode(  # the forks' caches are dropped: keep none
                    base.model, forks, rows, base.max_new_tokens, stop_ids, sample, keep=False
                )
        finally:
            for fork in forks or ():
                base.sessions.drop(fork)
        texts = [base.codec.decode_message(base._strip_end(t)) for t in decoded.tokens]
        return [texts[i * draws : (i + 1) * draws] for i in range(len(observations))]

    def candidates(self, observation: str) -> list[str]:
        """The base's greedy message, then ``n - 1`` sampled ones (possibly repeated)."""
        return [*self._greedy([observation]), *self._draws([observation])[0]]

    def _best(self, observation: str, texts: list[str]) -> str:
        import numpy as np

        from dialog_env.tasks.booking.tools import is_tool_call
        from dialog_env.text import parse_transcript

        if is_tool_call(texts[0]):
            return texts[0]
        replies = [t for t in texts if not is_tool_call(t)]
        if len(set(replies)) == 1:  # nothing to choose between: no scoring needed
            return replies[0]
        context = [{"role": t.role, "text": t.text} for t in parse_transcript(observation)]
        # Each candidate scored as the env scores the reply it sends (score_one: batch one,
        # the same number in any batch and process), so the best is the one whose reward
        # is highest, and the env's score of it is the memo's when dialog-bench run keeps
        # one. A reply drawn twice is scored once.
        by_reply = {r: self.reward_model.score_one(context, r) for r in dict.fromkeys(replies)}
        scores = [by_reply[r] for r in replies]
        return replies[int(np.argmax(scores))]  # the first of equal bests: the greedy one

    def act(self, observation: str) -> str:
        return self._best(observation, self.candidates(observation))

    def act_batch(self, observations: Sequence[str], keys=None) -> list[str]:
        """The best reply of each conversation: one batched greedy decode (incremental
        with ``keys``, as the base LM agent's), then one batched draw of ``n - 1``
        candidates for every conversation whose greedy message is not a tool call."""
        from dialog_env.tasks.booking.tools import is_tool_call

        greedy = self._greedy(observations, keys)
        replying = [i for i, g in enumerate(greedy) if not is_tool_call(g)]
        drawn = self._draws(
            [observations[i] for i in replying],
            None if keys is None else [keys[i] for i in replying],
        )
        out = list(greedy)
        for i, draws in zip(replying, drawn, strict=True):
            out[i] = self._best(observations[i], [greedy[i], *draws])
        return out
