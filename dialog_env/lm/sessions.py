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
token-identical in practice, as ``tests/lm/test_lm_sessions.py`` checks over whole episodes).

The batch is laid out so that no row pays for another's length. Rows that re-read a
long transcript (a first message, a cut one) and rows that add a short turn to their
cache are prefilled in separate forward calls (:func:`prefill_groups`); then each row's
cache is packed only as wide as its own prompt, and a row that stops writing leaves the
batch by moving one row into its place, not by copying the batch
(``dialog_env.lm.generation.compaction``). Before this layout, one left-padded prefill
per message batch computed 205k token columns for 126k real ones on ``sft-noisy``'s first
128 test episodes, and a row that stopped copied the whole batch's cache.

Rows of one call that would prefill the same tokens after the same cached keys and values
(a group-RL rollout's G copies of one seed: the same opening, and, from a policy fresh from
SFT, often the same messages and replies for several turns) are prefilled once
(:func:`twin_rows`), and decode as one row for as long as they draw the same tokens
(``dialog_env.lm.twin_decode``), with the same numbers to the bit (:data:`EXACT_ROWS`).

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

from dialog_env.lm.generation import Decoded, decode_retiring, greedy
from dialog_env.lm.kv_cache import packed_cache

__all__ = [
    "ConversationCache",
    "common_prefix",
    "decode_from_one_prefill",
    "decode_packed",
    "prefill_groups",
    "twin_rows",
]

#: Relative costs for :func:`prefill_groups`, in multiply-adds per 1,000 of the shipped
#: model (4 layers of width 128): a token through the layers, a key it attends to, and
#: one forward call's fixed cost (about a millisecond of Python and dispatch).
TOKEN_COST, KEY_COST, CALL_COST = 786, 1, 20_000

#: A matrix product of at least this many rows gives each row the same numbers whatever
#: the other rows are; below it, MKL's small-matrix kernels sum in another order (measured
#: on the shipped model's 128- and 512-wide layers: rows 1-15 move, 16 and more do not).
#: A prefill that shares twins' rows (:func:`twin_rows`) keeps at least this many token
#: rows in its call, so that sharing changes no number on such a CPU.
EXACT_ROWS = 16

#: Whether :func:`decode_packed` decodes twin rows once (``dialog_env.lm.twin_decode``).
TWIN_DECODE = True


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the longest common prefix of two id sequences.

    >>> common_prefix([1, 2, 3], [1, 2, 4, 5]), common_prefix([], [1]), common_prefix([7], [7])
    (2, 0, 1)
    """
    import numpy as np

    n = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if differ.size else n


def prefill_groups(fed: Sequence[int], held: Sequence[int]) -> list[list[int]]:
    """Rows to prefill together: a partition of ``range(len(fed))`` into groups, each one
    forward call whose rows are padded to the group's longest.

    Row ``i`` feeds ``fed[i]`` new tokens after ``held[i]`` cached ones. A group of ``g``
    rows costs ``g * F * (TOKEN_COST + KEY_COST * (H + F)) + CALL_COST`` for its longest
    ``F`` and ``H``; the partition into runs of rows sorted by ``fed`` that minimizes the
    sum is found by dynamic programming. One transcript encoded in full (hundreds of
    tokens) then no longer pads a batch of short continuations to its length.

    >>> prefill_groups([30, 383, 28, 31], [300, 0, 310, 290])
    [[2, 0, 3], [1]]
    >>> prefill_groups([5, 6], [10, 10])
    [[0, 1]]
    """
    order = sorted(range(len(fed)), key=lambda i: fed[i])
    best = [0.0] + [float("inf")] * len(order)  # best[j]: the first j rows of `order`
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        widest, longest_held = fed[order[j - 1]], 0
        for i in range(j - 1, -1, -1):  # the group order[i:j]
            longest_held = max(longest_held, held[order[i]])
            cost = best[i] + CALL_COST
            cost += (j - i) * widest * (TOKEN_COST + KEY_COST * (longest_held + widest))
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(order)
    while j:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def twin_rows(
    members: Sequence[int], prompts: Sequence[Sequence[int]], held: Sequence[list[tuple]]
) -> dict[int, int]:
    """Rows of ``members`` whose prefill another member's serves: ``{row: twin}``, the
    twin the first member with the same prompt (but its last token) and the same cached
    keys and values ``held[row]`` (per layer, over the same columns).

    The G rollouts of a group open with the same user turn, and a policy that writes the
    same message in several of them gets the same reply again (the voice draws from each
    env's own generator), so a group's rows are often alike for several messages. A twin
    is fed the very numbers its row would be and sits in the same forward call (padded
    to the same width), and a row's outputs do not depend on the other rows of its call,
    so its keys and values are those the row would have computed.

    >>> import torch
    >>> kv = [(torch.ones(1, 2, 1), torch.ones(1, 2, 1))]
    >>> twin_rows([0, 1, 2, 3], [[1, 2, 9], [1, 2, 8], [1, 3, 9], [1, 2, 7]], [kv, kv, kv, []])
    {1: 0}
    """
    import torch

    def same(a: list[tuple], b: list[tuple]) -> bool:
        return a is b or (
            len(a) == len(b)
            and all(
                torch.equal(ka, kb) and torch.equal(va, vb)
                for (ka, va), (kb, vb) in zip(a, b, strict=True)
            )
        )

    first: dict[tuple[int, ...], list[int]] = {}
    twins: dict[int, int] = {}
    for row in members:
        alike = first.setdefault(tuple(prompts[row][:-1]), [])
        twin = next((t for t in alike if same(held[t], held[row])), None)
        if twin is None:
            alike.append(row)
        else:
            twins[row] = twin
    return twins


def decode_from_one_prefill(
    model,
    prompts: Sequence[Sequence[int]],
    copies: int,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    choose: Callable = greedy,
) -> Decoded:
    """``copies`` continuations of each prompt, all from one prefill of it.

    Sampling ``n`` replies to one context by decoding ``n`` copies of its prompt reads the
    prompt ``n`` times; here each prompt but its last token is prefilled once (all the
    prompts in one left-padded forward, :func:`~dialog_env.lm.generation.prompt_heads`),
    its keys and values are copied ``copies`` ways into one packed cache, and the decode
    starts by feeding every copy the prompt's last token. Row ``i * copies + j`` of the
    result (and of the ``rows`` that ``choose`` is told) is copy ``j`` of prompt ``i``, so
    a sampler such as :func:`~dialog_env.lm.generation.inverse_cdf` over one row of
    uniforms per copy gives the tokens that ``batched_decode`` of the prompt repeated
    ``copies`` times gives with the same uniforms (up to float rounding in the attention,
    which moves a token only when a uniform falls within ~1e-6 of a step of the CDF;
    ``tests/agents/test_best_of_n.py`` checks the candidates are the same).

    >>> from dialog_env.lm import TINY_MODEL_DIR
    >>> from dialog_env.lm.loading import load_causal_lm
    >>> lm = load_causal_lm(TINY_MODEL_DIR)
    >>> out = decode_from_one_prefill(lm.model, [[1, 5, 60, 70]], 3, 4, stop_ids=[2])
    >>> len(out.tokens), out.tokens[0] == out.tokens[1] == out.tokens[2]  # greedy: alike
    (3, True)
    """
    from dialog_env.lm.generation import prompt_heads

    if copies < 1 or any(len(p) < 1 for p in prompts):
        raise ValueError("copies must be >= 1 and every prompt needs at least one token")
    device = next(model.parameters()).device
    heads = prompt_heads(model, prompts, device)
    rows = [heads[i] for i in range(len(prompts)) for _ in range(copies)]
    fed = [p for p in prompts for _ in range(copies)]
    return decode_packed(model, rows, fed, max_new_tokens, stop_ids, choose, device, False)[0]


def decode_packed(
    model,
    rows,
    prompts,
    max_new_tokens: int,
    stop_ids,
    choose: Callable,
    device,
    keep: bool = True,
) -> tuple[Decoded, list[list[tuple]]]:
    """Decode every row from its cached keys and values (``rows[i]``: per layer, over
    ``prompts[i]`` but its last token), packed side by side, by first feeding each row its
    prompt's last token; returns :func:`~dialog_env.lm.generation.decode_retiring`'s
    tokens and each row's cache as it left (``keep=False``: none, each ``[]``)."""
    import torch

    from dialog_env.lm.twin_decode import decode_twins

    past, mask = packed_cache(model.config, rows, reserve=max_new_tokens + 1, device=device)
    last = torch.tensor([[p[-1]] for p in prompts], dtype=torch.long, device=device)
    positions = torch.tensor([[len(p) - 1] for p in prompts], dtype=torch.long, device=device)
    mask = torch.cat([mask, torch.ones_like(last)], dim=-1)
    # Twins: rows that share one list of keys and values (a twin's prefill, a fork) and
    # feed the same prompt; each class of them decodes as one row while they draw alike.
    classes: dict[tuple, int] = {}
    of = [
        classes.setdefault((id(r), tuple(p)), len(classes))
        for r, p in zip(rows, prompts, strict=True)
    ]
    if TWIN_DECODE and len(rows) >= EXACT_ROWS and len(classes) < len(rows):
        return decode_twins(
            model,
            past,
            last,
            mask,
            positions,
            of,
            max_new_tokens,
            stop_ids,
            choose,
            EXACT_ROWS,
            keep,
        )
    return decode_retiring(
        model, past, last, mask, positions, max_new_tokens, stop_ids, choose, keep
    )


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
        share_prefills: rows of one call that would prefill the same tokens after the
            same cached keys and values are prefilled once (:func:`twin_rows`); False
            prefills each row itself (the reference the sharing is checked against).
    """

    def __init__(self, pad_id: int, max_conversations: int = 1024, share_prefills: bool = True):
        if max_conversations < 1:
            raise ValueError(f"max_conversations must be >= 1, got {max_conversations}")
        self.pad_id = pad_id
        self.max_conversations = max_conversations
        self.share = share_prefills
        self._kept: dict[Hashable, _Conversation] = {}
        #: Prompt tokens taken from the cache / fed to the model; rows encoded in full;
        #: ``shared``: of those fed, the tokens of rows that a twin's prefill served.
        self.stats = {"reused": 0, "fed": 0, "full": 0, "shared": 0}

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
        keep: bool = True,
    ) -> Decoded:
        """:func:`~dialog_env.lm.generation.batched_decode` of ``prompts``, where row
        ``i`` continues conversation ``keys[i]``: whatever of its prompt the cache holds
        is not fed again. Afterwards the cache holds each row's prompt and message, bar the
        message's last token (never fed); with ``keep=False`` it holds none of ``keys``
        (what a caller does that drops them next: the draws of forked conversations), and
        no row's keys and values are copied out of the decode.

        How the work is laid out: every prompt but its last token is first brought into
        the cache (the reused part copied, the rest prefilled in groups of rows with
        similar lengths, so that one re-encoded transcript does not pad a whole batch to
        its length); the rows' caches are then packed side by side, each only as wide as
        its own prompt, and the decode loop starts by feeding every row its last prompt
        token, as one batched step.
        """

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
        rows = self._prefill(model, prompts, reuse, kept, device)
        decoded, row_caches = decode_packed(
            model, rows, prompts, max_new_tokens, stop_ids, choose, device, keep
        )
        if not keep:
            return decoded
        for key, prompt, tokens, layers in zip(
            keys, prompts, decoded.tokens, row_caches, strict=True
        ):
            self._kept[key] = _Conversation([*prompt, *tokens[:-1]], layers)
        while len(self._kept) > self.max_conversations:
            self._kept.pop(next(iter(self._kept)))
        return decoded

    def _prefill(self, model, prompts, reuse, kept, device) -> list[list[tuple]]:
        """Each row's keys and values over its prompt but the last token: the cached
        ``reuse[i]`` columns as they are, the rest computed, one forward per group of
        :func:`prefill_groups`."""
        import torch

        from dialog_env.lm.generation import left_pad, prefill_rows

        def held(row: int) -> list[tuple]:  # the cached part, per layer (keys, values)
            n = reuse[row]
            return [(k[:, :n], v[:, :n]) for k, v in kept[row].layers] if n else []

        rows = [held(r) for r in range(len(prompts))]  # final for rows with nothing to feed
        todo = [r for r, p in enumerate(prompts) if len(p) - 1 > reuse[r]]
        fed = [len(prompts[r]) - 1 - reuse[r] for r in todo]
        for group in prefill_groups(fed, [reuse[r] for r in todo]):
            twins = twin_rows([todo[g] for g in group], prompts, rows) if self.share else {}
            # Keep EXACT_ROWS token rows in the call: fewer would sum in another order.
            need = -(-EXACT_ROWS // max(fed[g] for g in group))  # rows of that width
            for r in list(twins)[: max(0, need - (len(group) - len(twins)))]:
                del twins[r]
            members = [todo[g] for g in group if todo[g] not in twins]
            self.stats["shared"] += sum(len(prompts[r]) - 1 - reuse[r] for r in twins)
            past, held_mask = packed_cache(
                model.config,
                [rows[r] for r in members],
                reserve=max(fed[g] for g in group),
                device=device,
            )
            ids, new_mask, positions = left_pad(
                [prompts[r][reuse[r] : -1] for r in members], self.pad_id, device
            )
            offsets = torch.tensor([reuse[r] for r in members], device=device)
            positions = positions + offsets[:, None]
            mask = torch.cat([held_mask, new_mask], dim=-1)
            for r, row in zip(
                members, prefill_rows(model, ids, mask, positions, past), strict=True
            ):
                rows[r] = row
            for r, twin in twins.items():  # read-only: a packed cache copies its rows
                rows[r] = rows[twin]
        return rows
