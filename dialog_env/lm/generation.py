"""Batched, KV-cached decoding of token-id prompts: the one decode loop of the package.

Prompts of different lengths are left-padded so that they all end at the same column;
position ids skip the padding, so a row decodes as it would alone. Each step feeds only
the newest token and reuses the cache. ``choose(logprobs, t, rows)`` picks the next
tokens from the float64 log-probabilities of the last position (greedy, or sampled with
the caller's randomness; ``rows`` are the prompt indices of the batch's rows, which
change when rows that stopped leave the batch), so a caller decides how to sample and
what to record.

:func:`decode_after` is the same loop started from a cache that already holds a part of
each row (``dialog_env.lm.sessions`` keeps a conversation's cache between messages);
:func:`decode_retiring` lets a row leave the batch as it stops; :func:`decode_resampling`
also lets a row whose sample was refused start over inside the running batch (the LM
voice's retries).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = [
    "Decoded",
    "Resampled",
    "batched_decode",
    "cache_keyword",
    "compaction",
    "decode_after",
    "decode_resampling",
    "decode_retiring",
    "greedy",
    "inverse_cdf",
    "last_logits_only",
    "left_pad",
    "next_logits",
    "prefill_rows",
    "prompt_heads",
    "returned_cache",
]


@dataclass
class Resampled:
    """Each row's last attempt (its new tokens, stop token included when emitted), how
    many attempts it took, whether ``accept`` took the last one, and in how many forward
    calls it took part (its tokens over all attempts)."""

    tokens: list[list[int]]
    stopped: list[bool]
    attempts: list[int]
    accepted: list[bool]
    steps: list[int]
    forward_calls: int


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


def last_logits_only(model) -> dict:
    """The keyword that makes ``model``'s forward compute logits at the last column only
    (``logits_to_keep=1``, for a prefill whose other logits nobody reads), or ``{}`` for
    a model without it."""
    return {"logits_to_keep": 1} if "logits_to_keep" in _call_parameters(type(model)) else {}


def returned_cache(out):
    """The KV cache a transformers forward returned, under either of its names."""
    # Read `cache` first: touching the deprecated name logs a warning in transformers 5.
    found = getattr(out, "cache", None)
    return found if found is not None else out.past_key_values


def greedy(logprobs, step: int, rows=None):
    """The most likely token of each row."""
    return logprobs.argmax(-1)


def inverse_cdf(uniforms, temperature: float = 1.0) -> Callable:
    """A ``choose`` that samples at ``temperature`` by inverse CDF: ``uniforms[r, t]``
    (float64 in [0, 1), one per prompt row and new token) picks token ``t`` of row ``r``,
    so a sample is a function of the prompt, the model and the row's uniforms, whatever
    else is in the batch. All rows are sampled in one pass (no loop over rows); float64
    all the way, so a token changes only if its uniform falls within ~1e-6 of a step of
    the CDF.

    >>> import torch
    >>> logprobs = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64).log()
    >>> inverse_cdf(torch.tensor([[0.7], [0.7]], dtype=torch.float64))(
    ...     logprobs, 0, torch.tensor([0, 1])).tolist()
    [1, 0]
    """
    import torch

    def choose(logprobs, t: int, rows):
        cdf = torch.softmax(logprobs / temperature, dim=-1).cumsum(-1)
        target = (uniforms[rows, t] * cdf[:, -1]).unsqueeze(-1)
        return torch.searchsorted(cdf, target).squeeze(-1).clamp(max=cdf.size(-1) - 1)

    return choose


def batched_decode(
    model,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    choose: Callable = greedy,
    retire: bool = False,
) -> Decoded:
    """Decode every prompt until it emits a stop id or reaches ``max_new_tokens``.

    With ``retire``, a row leaves the batch when it stops (:func:`decode_retiring`): the
    same tokens, fewer rows to compute; without, every call sees every row.
    """
    device = next(model.parameters()).device
    ids, mask, positions = left_pad(prompts, pad_id, device)
    start = (model, None, ids, mask, positions, max_new_tokens, stop_ids)
    if retire:
        return decode_retiring(*start, choose)[0]
    return decode_after(*start, pad_id, choose)


def _preallocated(model, past, max_new_tokens: int):
    """An empty in-place KV cache (``dialog_env.lm.kv_cache``) for a transformers model
    that starts without one; anything else is left as it is."""
    if past is not None or getattr(model, "config", None) is None:
        return past
    from dialog_env.lm.kv_cache import growing_cache

    return growing_cache(model.config, reserve=max_new_tokens)


def next_logits(model, keyword: str, step_ids, mask, positions, past, **extra):
    """One forward call: the cache after it and the logits of the last column.

    A one-token step of a model that ``dialog_env.lm.fast_step`` serves goes through its
    :func:`~dialog_env.lm.fast_step.decode_step` (the same logits bit for bit, without
    transformers' per-call machinery); everything else through the model's forward, with
    ``extra`` keywords (e.g. :func:`last_logits_only` for a prefill).
    """
    from dialog_env.lm import fast_step

    if step_ids.shape[1] == 1 and fast_step.supports(model, past):
        return past, fast_step.decode_step(model, step_ids, mask, positions, past)[:, -1, :]
    out = model(
        input_ids=step_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **({} if past is None else {keyword: past}),
        **extra,
    )
    return returned_cache(out), out.logits[:, -1, :]


def _next_logprobs(model, keyword: str, step_ids, mask, positions, past):
    """:func:`next_logits`, as the float64 log-probabilities the loops choose from."""
    import torch

    past, logits = next_logits(model, keyword, step_ids, mask, positions, past)
    return past, torch.log_softmax(logits.double(), dim=-1)


def decode_after(
    model,
    past,
    ids,
    mask,
    positions,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    choose: Callable = greedy,
) -> Decoded:
    """The decode loop, from ``past`` (a KV cache, or None) and the ``ids`` that follow it.

    ``mask`` covers the cache's columns and then those of ``ids``; ``positions`` are the
    position ids of ``ids``. Every row's last column must be a real token. A row that
    stopped is fed pad ids until every row has, so each call sees the whole batch (what
    ``choose`` functions that record per-call columns rely on).
    """
    import torch

    past = _preallocated(model, past, max_new_tokens)
    stops = torch.tensor(list(stop_ids), device=ids.device)
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    out_tokens: list[torch.Tensor] = []
    calls = 0
    step_ids = ids
    keyword = cache_keyword(model)
    rows = torch.arange(ids.shape[0], device=ids.device)
    with torch.inference_mode():
        for t in range(max_new_tokens):
            past, logprobs = _next_logprobs(model, keyword, step_ids, mask, positions, past)
            calls += 1
            nxt = choose(logprobs, t, rows)
            nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
            out_tokens.append(nxt)
            done |= torch.isin(nxt, stops)
            if bool(done.all()):
                break
            step_ids = nxt.unsqueeze(-1)
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=-1)
            positions = positions[:, -1:] + 1
    rows = torch.stack(out_tokens, dim=1).tolist() if out_tokens else [[] for _ in range(len(ids))]
    stop_set = set(stop_ids)
    tokens, stopped = [], []
    for row in rows:
        cut = next((k for k, i in enumerate(row) if i in stop_set), None)
        tokens.append(row if cut is None else row[: cut + 1])
        stopped.append(cut is not None)
    return Decoded(tokens, stopped, calls)


def compaction(leaving: Sequence[bool]) -> list[int]:
    """The batch positions that stay when the rows marked in ``leaving`` go, in the order
    that moves fewest rows: a staying row before the new end keeps its place, and each
    staying row after it fills a hole (:class:`~dialog_env.lm.kv_cache.GrowingLayer`
    then copies only the rows that move, not the batch).

    >>> compaction([False, True, False, False, True, False])
    [0, 5, 2, 3]
    """
    stay = [row for row, gone in enumerate(leaving) if not gone]
    kept = len(stay)
    tail = [row for row in stay if row >= kept]
    return [row if not leaving[row] else tail.pop(0) for row in range(kept)]


def decode_retiring(
    model,
    past,
    ids,
    mask,
    positions,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    choose: Callable = greedy,
    keep: bool = True,
) -> tuple[Decoded, list[list[tuple]]]:
    """:func:`decode_after` in which a row leaves the batch as soon as it stops, so the
    calls that follow cost only the rows still writing (``choose`` is told which rows
    those are). Also returns each row's KV cache as it left:
    per layer ``(keys, values)`` of shape ``(heads, n, head_dim)`` over the ``n`` tokens
    it was fed (its prompt and its new tokens but the last); with ``keep=False`` none is
    copied out (each row's is ``[]``), for a caller that throws them away.
    """
    import torch

    from dialog_env.lm.kv_cache import row_cache

    past = _preallocated(model, past, max_new_tokens)
    stops = torch.tensor(list(stop_ids), device=ids.device)
    active = list(range(ids.shape[0]))  # the original row at each batch position
    tokens: list[list[int]] = [[] for _ in active]
    stopped = [False] * len(active)
    kept: list[list[tuple]] = [[] for _ in active]
    calls = 0
    step_ids = ids
    keyword = cache_keyword(model)
    with torch.inference_mode():
        for t in range(max_new_tokens):
            past, logprobs = _next_logprobs(model, keyword, step_ids, mask, positions, past)
            calls += 1
            nxt = choose(logprobs, t, torch.tensor(active, device=ids.device))
            ends = torch.isin(nxt, stops)
            for pos, (row, token, end) in enumerate(
                zip(active, nxt.tolist(), ends.tolist(), strict=True)
            ):
                tokens[row].append(token)
                stopped[row] = end
                if keep and (end or t == max_new_tokens - 1):
                    kept[row] = row_cache(past, mask, pos)
            leaving = ends.tolist()
            if all(leaving) or t == max_new_tokens - 1:
                break
            if any(leaving):
                order = compaction(leaving)
                stay = torch.tensor(order, device=ids.device)
                past.batch_select_indices(stay)
                mask, positions, nxt = mask[stay], positions[stay], nxt[stay]
                active = [active[i] for i in order]
            step_ids = nxt.unsqueeze(-1)
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=-1)
            positions = positions[:, -1:] + 1
    return Decoded(tokens, stopped, calls), kept


def decode_resampling(
    model,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    choose: Callable,
    accept: Callable[[int, list[int], bool], bool],
    tries: int,
    heads: Sequence[list[tuple]] | None = None,
) -> Resampled:
    """Sample each prompt until ``accept`` takes an attempt, at most ``tries`` attempts a
    row, with the retries in the running batch (continuous batching).

    When a row stops (or has written ``max_new_tokens``), ``accept(row, tokens,
    stopped)`` judges the attempt. Taken, or out of tries, the row leaves the batch;
    refused, it starts over at once: its prompt's keys and values (computed once, before
    the first attempt) are written back over its cache columns, and it is fed its last
    prompt token again while the other rows go on writing. So no row waits for the
    batch's longest attempt before its retry, and no retry pays a decode call of its own.
    ``choose(logprobs, t, draws)``: ``t`` holds each row's token index in its attempt and
    ``draws`` is ``row * tries + attempt``, so a sample is a function of the row's prompt
    and its draw's randomness alone (e.g. :func:`inverse_cdf` over ``tries`` uniforms'
    rows per prompt), whatever else is in the batch. A cache that cannot be written in
    place (a layer other than :class:`~dialog_env.lm.kv_cache.GrowingLayer`) runs the
    retries in rounds instead: the same draws, in more decode calls.

    ``heads``: each prompt's keys and values over all its tokens but the last, when the
    caller keeps them (:func:`prompt_heads` computes them otherwise, in one batch).

    Kept whole (over 80 lines) on purpose: every step shares the batch's rows, their
    caches, tries and draws; split, that state would be passed back and forth.
    """
    import torch

    from dialog_env.lm.kv_cache import packed_cache

    if any(len(p) < 1 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    device = next(model.parameters()).device
    keyword = cache_keyword(model)
    stops = torch.tensor(list(stop_ids), device=device)
    count = len(prompts)
    tokens: list[list[int]] = [[] for _ in range(count)]
    stopped, accepted = [False] * count, [False] * count
    attempts, steps = [0] * count, [0] * count
    if heads is None:  # per row, keys and values of prompt[:-1]
        heads = prompt_heads(model, prompts, device)
    calls, todo = 0, list(range(count))
    while todo:  # one round, unless the cache cannot take a row's restart in place
        past, mask = packed_cache(
            model.config, [heads[r] for r in todo], reserve=max_new_tokens + 1, device=device
        )
        in_place = _restartable(past)
        active, later = list(todo), []
        step_ids = torch.tensor([[prompts[r][-1]] for r in active], device=device)
        positions = torch.tensor([[len(prompts[r]) - 1] for r in active], device=device)
        mask = torch.cat([mask, torch.ones_like(step_ids)], dim=-1)
        with torch.inference_mode():
            while active:
                past, logprobs = _next_logprobs(model, keyword, step_ids, mask, positions, past)
                calls += 1
                t = torch.tensor([len(tokens[r]) for r in active], device=device)
                draws = torch.tensor([r * tries + attempts[r] for r in active], device=device)
                nxt = choose(logprobs, t, draws)
                ends = torch.isin(nxt, stops).tolist()
                leaving, restarting = [False] * len(active), []
                for pos, (r, token) in enumerate(zip(active, nxt.tolist(), strict=True)):
                    tokens[r].append(token)
                    steps[r] += 1
                    if not (ends[pos] or len(tokens[r]) == max_new_tokens):
                        continue
                    stopped[r] = ends[pos]
                    accepted[r] = bool(accept(r, tokens[r], ends[pos]))
                    if accepted[r] or attempts[r] == tries - 1:
                        leaving[pos] = True
                    elif in_place:
                        restarting.append(pos)
                    else:
                        leaving[pos] = True
                        later.append(r)
                step_ids, positions = nxt.unsqueeze(-1), positions + 1
                width = mask.shape[-1]  # the column the next token is written to
                for pos in restarting:
                    r = active[pos]
                    attempts[r] += 1
                    tokens[r], stopped[r] = [], False
                    n = len(prompts[r]) - 1
                    for layer, (keys, values) in zip(past.layers, heads[r], strict=n > 0):
                        layer.write_row(pos, width - n, keys, values)  # n = 0: nothing kept
                    mask[pos, : width - n] = 0
                    mask[pos, width - n :] = 1
                    step_ids[pos, 0], positions[pos, 0] = prompts[r][-1], n
                if any(leaving):
                    if all(leaving):
                        break
                    order = compaction(leaving)
                    stay = torch.tensor(order, device=device)
                    past.batch_select_indices(stay)
                    mask, positions, step_ids = mask[stay], positions[stay], step_ids[stay]
                    active = [active[i] for i in order]
                mask = torch.cat([mask, torch.ones_like(step_ids)], dim=-1)
        for r in later:
            attempts[r] += 1
            tokens[r], stopped[r] = [], False
        todo = later
    return Resampled(tokens, stopped, [a + 1 for a in attempts], accepted, steps, calls)


def _restartable(past) -> bool:
    """Whether a row of ``past`` can start over in place (every layer a ``GrowingLayer``)."""
    from dialog_env.lm.kv_cache import GrowingLayer

    return all(isinstance(layer, GrowingLayer) for layer in past.layers)


def prompt_heads(model, prompts, device) -> list[list[tuple]]:
    """Each prompt's keys and values over all its tokens but the last (one left-padded
    forward of the prompts longer than one token), per layer ``(keys, values)``."""
    from dialog_env.lm.kv_cache import growing_cache

    heads: list[list[tuple]] = [[] for _ in prompts]
    longer = [r for r, p in enumerate(prompts) if len(p) > 1]
    if longer:
        ids, mask, positions = left_pad([prompts[r][:-1] for r in longer], 0, device)
        past = growing_cache(model.config, reserve=1)
        for r, row in zip(longer, prefill_rows(model, ids, mask, positions, past), strict=True):
            heads[r] = row
    return heads


def prefill_rows(model, ids, mask, positions, past) -> list[list[tuple]]:
    """Feed ``ids`` after what ``past`` holds (``mask`` covers both) and return each row's
    keys and values over its real columns (:func:`~dialog_env.lm.kv_cache.row_cache`);
    nothing else of the forward is read, so a model that
    :func:`~dialog_env.lm.fast_step.supports` it computes only the keys and values
    (:func:`~dialog_env.lm.fast_step.prefill_keys_values`), any other the logits at the
    last column only."""
    import torch

    from dialog_env.lm.fast_step import prefill_keys_values, supports
    from dialog_env.lm.kv_cache import row_cache

    if supports(model, past):
        prefill_keys_values(model, ids, mask, positions, past)
        return [row_cache(past, mask, pos) for pos in range(ids.shape[0])]
    with torch.inference_mode():
        model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_keyword(model): past},
            **last_logits_only(model),
        )
    return [row_cache(past, mask, pos) for pos in range(ids.shape[0])]
