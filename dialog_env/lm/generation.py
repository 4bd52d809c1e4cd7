"""Batched, KV-cached decoding of token-id prompts: the one decode loop of the package.

Prompts of different lengths are left-padded so that they all end at the same column;
position ids skip the padding, so a row decodes as it would alone. Each step feeds only
the newest token and reuses the cache. ``choose`` picks the next tokens from the float64
log-probabilities of the last position (greedy, or sampled with the caller's randomness),
so a caller decides how to sample and what to record.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = ["Decoded", "batched_decode", "cache_keyword", "greedy", "left_pad"]


@dataclass
class Decoded:
    """The new tokens of each row (stop token included when one was emitted)."""

    tokens: list[list[int]]
    stopped: list[bool]
    forward_calls: int


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device: str = "cpu"):
    """``(input_ids, attention_mask, position_ids)`` of left-padded prompts."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, seq in enumerate(prompts):
        if seq:
            ids[row, width - len(seq) :] = torch.as_tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


@cache
def _call_parameters(model_class: type) -> frozenset[str]:
    call = getattr(model_class, "forward", None) or model_class.__call__
    return frozenset(inspect.signature(call).parameters)


def cache_keyword(model) -> str:
    """The name under which ``model`` takes its KV cache back.

    transformers >= 5.2x calls it ``cache`` (``past_key_values`` is deprecated there);
    earlier versions only know ``past_key_values``.
    """
    return "cache" if "cache" in _call_parameters(type(model)) else "past_key_values"


def _returned_cache(out):
    # Read `cache` first: touching the deprecated name logs a warning in transformers 5.
    found = getattr(out, "cache", None)
    return found if found is not None else out.past_key_values


def greedy(logprobs, step: int):
    """The most likely token of each row."""
    return logprobs.argmax(-1)


def batched_decode(
    model,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    choose: Callable = greedy,
) -> Decoded:
    """Decode every prompt until it emits a stop id or reaches ``max_new_tokens``."""
    import torch

    device = next(model.parameters()).device
    ids, mask, positions = left_pad(prompts, pad_id, device)
    stops = torch.tensor(list(stop_ids), device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    out_tokens: list[torch.Tensor] = []
    past = None
    calls = 0
    step_ids = ids
    keyword = cache_keyword(model)
    with torch.inference_mode():
        for t in range(max_new_tokens):
            out = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **({} if past is None else {keyword: past}),
            )
            calls += 1
            past = _returned_cache(out)
            logprobs = torch.log_softmax(out.logits[:, -1, :].double(), dim=-1)
            nxt = choose(logprobs, t)
            nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
            out_tokens.append(nxt)
            done |= torch.isin(nxt, stops)
            if bool(done.all()):
                break
            step_ids = nxt.unsqueeze(-1)
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=-1)
            positions = positions[:, -1:] + 1
    rows = torch.stack(out_tokens, dim=1).tolist() if out_tokens else [[] for _ in prompts]
    stop_set = set(stop_ids)
    tokens, stopped = [], []
    for row in rows:
        cut = next((k for k, i in enumerate(row) if i in stop_set), None)
        tokens.append(row if cut is None else row[: cut + 1])
        stopped.append(cut is not None)
    return Decoded(tokens, stopped, calls)
