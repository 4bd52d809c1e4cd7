"""Incremental decoding: each conversation keeps its KV cache between messages.

An agent's prompt for message ``k + 1`` is its prompt for message ``k``, the message it
wrote and the turns added since (the user's reply, a tool result). Re-encoding all of it
every message makes almost all of an LM agent's compute the prefill of tokens it has
already read. :class:`ConversationCache` keeps, per conversation key, the token ids it
has fed and their keys and values; the next prompt of that conversation reuses the
longest common prefix and feeds only the rest, as serving systems' prefix caching does.

Reuse is decided on token ids alone, so it is exact whatever happened in between: if the
env normalized the message, if the codec writes it back with other ids than the model
sampled, or if the transcript was cut at the context limit (then the prefix is empty,
nothing is reused, and the row is encoded in full: ``stats["full"]`` counts those), the
common prefix simply ends there. A message then is the same as a full re-encode's, up to
float rounding in the attention (different batch shapes; a greedy message is
token-identical in practice, as ``tests/test_lm_sessions.py`` checks over whole episodes).

A cache belongs to one set of weights: :meth:`ConversationCache.clear` when they change.

>>> import torch
>>> from dialog_env.lm import TINY_MODEL_DIR
>>> from dialog_env.lm.loading import load_causal_lm
>>> lm = load_causal_lm(TINY_MODEL_DIR)
>>> cache = ConversationCache(pad_id=lm.tokenizer.pad_token_id)
>>> first = cache.decode(lm.model, ["a"], [[1, 5, 60, 70]], 4, stop_ids=[2])
>>> again = cache.decode(lm.model, ["a"], [[1, 5, 60, 70, *first.tokens[0], 80]], 4, [2])
>>> cache.stats["reused"] >= 4, len(cache)
(True, 1)
>>> cache.drop("a"); len(cache)
0
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from dialog_env.lm.generation import Decoded, decode_retiring, greedy, left_pad

__all__ = ["ConversationCache", "common_prefix"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the longest common prefix of two id sequences.

    >>> common_prefix([1, 2, 3], [1, 2, 4, 5]), common_prefix([], [1]), common_prefix([7], [7])
    (2, 0, 1)
    """
    import numpy as np

    n = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if differ.size else n


@dataclass
class _Conversation:
    ids: list[int]  # the tokens whose keys and values are kept, in order
    layers: list[tuple[Any, Any]]  # per layer, keys and values (heads, len(ids), head_dim)


class ConversationCache:
    """Per-conversation KV caches for one model, reused across messages.

    Args:
        pad_id: the tokenizer's pad id (fills the columns of shorter rows).
        max_conversations: kept at most; the least recently used goes first. A caller
            that knows when a conversation ends should :meth:`drop` it then.
    """

    def __init__(self, pad_id: int, max_conversations: int = 1024):
        if max_conversations < 1:
            raise ValueError(f"max_conversations must be >= 1, got {max_conversations}")
        self.pad_id = pad_id
        self.max_conversations = max_conversations
        self._kept: dict[Hashable, _Conversation] = {}
        #: Prompt tokens taken from the cache / fed to the model; rows encoded in full.
        self.stats = {"reused": 0, "fed": 0, "full": 0}

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._kept

    def drop(self, key: Hashable) -> None:
        """Forget a conversation (it ended); unknown keys are ignored."""
        self._kept.pop(key, None)

    def fork(self, key: Hashable, copies: Sequence[Hashable]) -> bool:
        """Let each of ``copies`` continue from what conversation ``key`` holds (several
        samples of one next message read its prompt once); ``key`` itself is kept.
        Returns False, forking nothing, when ``key`` is unknown. :meth:`drop` the copies
        when done with them."""
        conversation = self._kept.get(key)
        if conversation is None:
            return False
        for copy in copies:  # shared read-only: a decode copies what it reuses
            self._kept[copy] = conversation
        return True

    def clear(self) -> None:
        """Forget every conversation (e.g. the model's weights changed)."""
        self._kept.clear()

    def decode(
        self,
        model,
        keys: Sequence[Hashable],
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        stop_ids: Sequence[int],
        choose: Callable = greedy,
    ) -> Decoded:
        """:func:`~dialog_env.lm.generation.batched_decode` of ``prompts``, where row
        ``i`` continues conversation ``keys[i]``: whatever of its prompt the cache holds
        is not fed again. Afterwards the cache holds each row's prompt and message, bar the
        message's last token (never fed)."""
        import torch

        if len(keys) != len(prompts) or len(set(keys)) != len(keys):
            raise ValueError("decode needs one distinct key per prompt")
        if any(not p for p in prompts):
            raise ValueError("every prompt needs at least one token")
        device = next(model.parameters()).device
        reuse, kept = [], []
        for key, prompt in zip(keys, prompts, strict=True):
            conversation = self._kept.pop(key, None)
            n = 0 if conversation is None else common_prefix(conversation.ids, prompt)
            n = min(n, len(prompt) - 1)  # the last prompt token is fed for its logits
            reuse.append(n)
            kept.append(conversation)
            self.stats["reused"] += n
            self.stats["fed"] += len(prompt) - n
            self.stats["full"] += n == 0
        ids, new_mask, positions = left_pad(
            [p[n:] for p, n in zip(prompts, reuse, strict=True)], self.pad_id, device
        )
        positions = positions + torch.tensor(reuse, device=device)[:, None]
        past, mask = self._assemble(kept, reuse, model, device, max_new_tokens), new_mask
        if past is not None:
            mask = torch.cat([past[1], new_mask], dim=-1)
            past = past[0]
        decoded, row_caches = decode_retiring(
            model, past, ids, mask, positions, max_new_tokens, stop_ids, choose
        )
        for key, prompt, tokens, layers in zip(
            keys, prompts, decoded.tokens, row_caches, strict=True
        ):
            self._kept[key] = _Conversation([*prompt, *tokens[:-1]], layers)
        while len(self._kept) > self.max_conversations:
            self._kept.pop(next(iter(self._kept)))
        return decoded

    def _assemble(
        self, kept: list[_Conversation | None], reuse: list[int], model, device, reserve: int
    ):
        """The reused parts as one left-padded cache, and its attention mask; None if
        nothing is reused."""
        import torch

        from dialog_env.lm.kv_cache import growing_cache

        width = max(reuse)
        if width == 0:
            return None
        mask = torch.zeros((len(reuse), width), dtype=torch.long, device=device)
        layers = []
        for layer in range(len(next(c for c in kept if c is not None).layers)):
            sample = next(c for c in kept if c is not None).layers[layer][0]
            heads, _, dim = sample.shape
            k = sample.new_zeros((len(reuse), heads, width, dim))
            v = sample.new_zeros((len(reuse), heads, width, dim))
            for row, (conversation, n) in enumerate(zip(kept, reuse, strict=True)):
                if n:
                    k[row, :, width - n :] = conversation.layers[layer][0][:, :n]
                    v[row, :, width - n :] = conversation.layers[layer][1][:, :n]
            layers.append((k, v))
        for row, n in enumerate(reuse):
            if n:
                mask[row, width - n :] = 1
        return growing_cache(model.config, reserve=reserve, layers=layers), mask
