"""The token-level interface: one token per step, token ids in, token ids out."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.spaces import Box, Dict, Discrete

from dialog_env.core import EpisodeOver
from dialog_env.lm.codec import MAX_MESSAGE_TOKENS, MessageCodec, load_tokenizer
from dialog_env.voicing import Stepping
from dialog_env.wrappers.actions import as_action_index
from dialog_env.wrappers.base import InterfaceWrapper, reset_steps, step_steps

__all__ = ["TokenContext", "TokenInterface", "TokenObservation"]


class TokenContext:
    """The conversation's token ids, kept in step with the turn list, as fixed-size arrays."""

    def __init__(self, tokenizer: Any, context: int | None = None):
        self.codec = MessageCodec(tokenizer)
        self.vocab_size = len(tokenizer)
        context = int(context or getattr(tokenizer, "model_max_length", 512))
        self.context = 512 if context > 100_000 else context  # "no limit": the tiny LM's
        ids = Box(0, self.vocab_size - 1, shape=(self.context,), dtype=np.int64)
        mask = Box(0, 1, shape=(self.context,), dtype=np.int64)
        self.space = Dict({"input_ids": ids, "attention_mask": mask})
        self.reset()

    def reset(self) -> None:
        self.history = [self.codec.bos_id]
        self.seen = 0

    def sync(self, turns: list[dict[str, str]]) -> None:
        for turn in turns[self.seen :]:
            self.history += self.codec.turn_ids(turn["role"], turn["text"])
        self.seen = len(turns)

    def observation(self, message: list[int] = ()) -> dict[str, np.ndarray]:
        """The history, ``<|assistant|>`` and the message so far; left-cut, left-padded."""
        tokens = [*self.history, self.codec.role_ids["assistant"], *message][-self.context :]
        ids = np.full(self.context, self.codec.pad_id, dtype=np.int64)
        mask = np.zeros(self.context, dtype=np.int64)
        ids[-len(tokens) :] = tokens
        mask[-len(tokens) :] = 1
        return {"input_ids": ids, "attention_mask": mask}


class TokenObservation(InterfaceWrapper):
    """The observation is the conversation's token ids (see :class:`TokenInterface`).

    For policies that read tokens but act otherwise (``interface="act",
    observation="tokens"``).
    """

    def __init__(self, env: gym.Env, tokenizer: Any = None, context: int | None = None):
        super().__init__(env)
        self.tokens = TokenContext(load_tokenizer(tokenizer), context)
        self.observation_space = self.tokens.space

    def outer_reset(self, obs, info):
        self.tokens.reset()
        self.tokens.sync(info["turns"])
        return self.tokens.observation(), info

    def outer_step(self, obs, reward, terminated, truncated, info):
        self.tokens.sync(info["turns"])
        return self.tokens.observation(), reward, terminated, truncated, info


class TokenInterface(InterfaceWrapper):
    """Actions are single tokens, ``Discrete(vocab)``; the message is sent at ``<|end|>``.

    The observation is a dict of two fixed-size ``int64`` arrays: ``input_ids``, the
    conversation so far in the LM's document format followed by ``<|assistant|>`` and the
    tokens of the message being written, left-truncated to ``context`` tokens and
    left-padded; and ``attention_mask`` (1 for real tokens). The message goes to the user
    when the agent emits ``<|end|>`` (or ``</s>``), or when it reaches
    ``max_message_tokens``. Steps that only add a token give reward 0. After the episode
    ends, any token raises :class:`~dialog_env.core.EpisodeOver`, as the text env does.

    Args:
        env: the text env.
        tokenizer: a transformers tokenizer in our format, or a directory holding one
            (default: the shipped tiny LM's).
        context: observation length in tokens (default: the model's, 512 for the tiny LM).
        max_message_tokens: a message is sent when it reaches this many tokens.
    """

    def __init__(
        self,
        env: gym.Env,
        tokenizer: Any = None,
        context: int | None = None,
        max_message_tokens: int = MAX_MESSAGE_TOKENS,
    ):
        super().__init__(env)
        self.tokens = TokenContext(load_tokenizer(tokenizer), context)
        self.codec = self.tokens.codec
        self.vocab_size = self.tokens.vocab_size
        self.max_message_tokens = max_message_tokens
        self.action_space = Discrete(self.vocab_size)
        self.observation_space = self.tokens.space
        self._message: list[int] = []
        self._turns: list[dict] = []
        self._over: bool | None = None  # None: not reset yet

    def reset_steps(self, *, seed: int | None = None, options: dict | None = None):
        _, info = yield from reset_steps(self.env, seed=seed, options=options)
        self._message = []
        self.tokens.reset()
        self.tokens.sync(info["turns"])
        self._turns = info["turns"]
        self._over = False
        return self.tokens.observation(), info

    def step_steps(self, action: Any) -> Stepping[tuple]:
        token = as_action_index(action, self.vocab_size, what="token id")
        # Checked here, not left to the text env: a token that does not end the message
        # never reaches it, and would otherwise be taken after the episode's end.
        if self._over is None:
            raise ResetNeeded("call reset() before step()")
        if self._over:
            raise EpisodeOver("the conversation has ended; call reset() to start a new one")
        ended = token in self.codec.end_ids
        if not ended:
            self._message.append(token)
        if not ended and len(self._message) < self.max_message_tokens:
            info = {"turns": self._turns, "message_tokens": len(self._message)}
            return self.tokens.observation(self._message), 0.0, False, False, info
        message = self.codec.decode_message(self._message)
        self._message = []
        _, reward, terminated, truncated, info = yield from step_steps(self.env, message)
        self._over = terminated
        self.tokens.sync(info["turns"])
        self._turns = info["turns"]
        info["message"] = message
        return self.tokens.observation(), reward, terminated, truncated, info
