"""A language-model agent: reads the transcript, writes the next message token by token.

The conversation is written in the LM's document format (``<s><|user|> ...<|end|>``),
followed by ``<|assistant|>``; the agent decodes greedily until ``<|end|>``. SFT agents
and the token-level PPO policy are both this agent with other weights. ``act_batch``
decodes many conversations in one batched, KV-cached decode; given ``keys`` (one per
conversation, e.g. the evaluator's episode index) it decodes incrementally: each
conversation keeps its KV cache between messages and only the turns added since its
last message are fed (``dialog_env.lm.sessions``). ``end_episode(key)`` frees a
conversation's cache; ``act`` keeps the cache of the one conversation it plays until
``reset``.

A checkpoint directory holds::

    config.json    {"agent": "lm", "paradigm": ..., "interface": ..., "max_new_tokens": ...,
                    "spell_codes": false}  (true: codes are read and written one character
                    per word, see dialog_env.lm.codec.spell_codes)
    manifest.json  how it was trained
    lm/            a transformers causal-LM directory (config, model.safetensors, tokenizer)

or, trained with ``--lora``, ``adapter/`` and the config's ``base_model`` + ``base_sha256``
in place of ``lm/`` (:mod:`agents.lora`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from agents.base import INTERFACES, PARADIGMS, BaseAgent
from agents.checkpoint import read_config
from dialog_env.lm.codec import MAX_MESSAGE_TOKENS
from dialog_env.text import parse_transcript

__all__ = ["LMAgent", "LM_SUBDIR", "encode_context"]

LM_SUBDIR = "lm"
#: The conversation key of ``act`` (one conversation at a time).
_ACT_KEY = "act"


def encode_context(codec: Any, observation: str, context: int, reserve: int) -> list[int]:
    """The transcript as token ids ending in ``<|assistant|>``, left-cut so that ``reserve``
    new tokens still fit into ``context``."""
    ids = [codec.bos_id]
    for turn in parse_transcript(observation):
        ids += codec.turn_ids(turn.role, turn.text)
    ids.append(codec.role_ids["assistant"])
    keep = context - reserve
    return ids if len(ids) <= keep else ids[-keep:]


class LMAgent(BaseAgent):
    """Greedy decoding from a causal LM in our format."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "lm",
        paradigm: str = "sft",
        interface: str = "text",
        max_new_tokens: int = MAX_MESSAGE_TOKENS,
        spell_codes: bool = False,
    ):
        from dialog_env.lm.codec import MessageCodec

        super().__init__()
        if paradigm not in PARADIGMS or interface not in INTERFACES:
            raise ValueError(f"paradigm must be in {PARADIGMS}, interface in {INTERFACES}")
        self.model, self.tokenizer = model, tokenizer
        self.name, self.paradigm, self.interface = name, paradigm, interface
        self.max_new_tokens = max_new_tokens
        self.codec = MessageCodec(tokenizer, spell_codes=spell_codes)
        self.context = int(getattr(model.config, "max_position_embeddings", 512))
        from dialog_env.lm.sessions import ConversationCache

        self.sessions = ConversationCache(self.codec.pad_id)
        #: False: ``keys`` are ignored and every message re-reads the whole transcript
        #: (the reference that incremental decoding is checked and benchmarked against).
        self.incremental = True

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> LMAgent:
        from dialog_env.lm.loading import load_causal_lm

        config = read_config(path)
        if ("base_model" in config) != ("base_sha256" in config):
            raise ValueError(f"{path / 'config.json'}: base_model and base_sha256 go together")
        if "base_sha256" in config:  # a LoRA adapter on a base LM, merged on load
            from agents.lora import load_lora_lm

            model, tokenizer = load_lora_lm(path, config, device)
        else:
            lm = load_causal_lm(path / LM_SUBDIR, device)
            if lm.style != "voice":
                raise ValueError(f"{path / LM_SUBDIR} is not in dialog-bench's LM format")
            model, tokenizer = lm.model, lm.tokenizer
        agent = cls(
            model,
            tokenizer,
            name=path.name,
            paradigm=config.get("paradigm", "sft"),
            interface=config.get("interface", "text"),
            max_new_tokens=int(config.get("max_new_tokens", MAX_MESSAGE_TOKENS)),
            spell_codes=bool(config.get("spell_codes", False)),
        )
        if agent.max_new_tokens > agent.context // 2:  # the transcript needs the other half
            raise ValueError(
                f"{path / 'config.json'}: max_new_tokens {agent.max_new_tokens} is over half "
                f"the model's context of {agent.context} tokens"
            )
        return agent

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.sessions.clear()

    def end_episode(self, key: Hashable) -> None:
        """Conversation ``key`` ended: free its KV cache."""
        self.sessions.drop(key)

    def act(self, observation: str) -> str:
        return self.act_batch([observation], keys=[_ACT_KEY])[0]

    def act_batch(
        self, observations: Sequence[str], keys: Sequence[Hashable] | None = None
    ) -> list[str]:
        """The next message of each conversation; with ``keys``, incrementally."""
        from dialog_env.lm.generation import batched_decode

        prompts = [
            encode_context(self.codec, o, self.context, self.max_new_tokens) for o in observations
        ]
        stop_ids = sorted(self.codec.end_ids)
        if keys is None or not self.incremental:
            decoded = batched_decode(
                self.model, prompts, self.max_new_tokens, stop_ids, self.codec.pad_id
            )
        else:
            decoded = self.sessions.decode(self.model, keys, prompts, self.max_new_tokens, stop_ids)
        return [self.codec.decode_message(self._strip_end(t)) for t in decoded.tokens]

    def _strip_end(self, tokens: list[int]) -> list[int]:
        return tokens[:-1] if tokens and tokens[-1] in self.codec.end_ids else tokens
