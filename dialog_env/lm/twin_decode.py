"""A decode in which twin rows run once: rows that hold the same keys and values and were
fed the same tokens compute the same logits, so one batch row serves them all.

The G rollouts of a group-RL seed often write the same message from the same transcript
(a policy fresh from SFT is nearly greedy at temperature 1), so most rows of a rollout's
decode are copies of another (``docs/throughput.md``). :func:`decode_twins` keeps a
*virtual* batch, the rows as :func:`~dialog_env.lm.generation.decode_retiring` would
hold them (the same order, the same compaction when rows stop), and a *physical* batch
that holds each distinct row once. Each step runs the physical batch, expands its
log-probs to the virtual rows and lets ``choose`` draw for every virtual row as it
would; rows of one physical row that draw different tokens part, the new ones copied
from it (:meth:`~dialog_env.lm.kv_cache.GrowingLayer.append_copies`).

**Exact to the bit** (on a CPU whose matrix products do not depend on the other rows
of a call of 16 rows or more, :data:`~dialog_env.lm.sessions.EXACT_ROWS`): while 16 or
more virtual rows run, the physical batch keeps at least 16 rows (twins are parted
without a draw to make up the number), so each row's numbers are its own; once fewer
than 16 run, every virtual row gets its own physical row, in the virtual order, and the
decode goes on as :func:`~dialog_env.lm.generation.decode_retiring` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dialog_env.lm.generation import Decoded, cache_keyword, compaction, next_logits

__all__ = ["decode_twins"]


def decode_twins(
    model,
    past,
    ids,
    mask,
    positions,
    classes: Sequence[int],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    choose: Callable,
    floor: int,
    keep: bool = True,
) -> tuple[Decoded, list[list[tuple]]]:
    """:func:`~dialog_env.lm.generation.decode_retiring` of a batch whose row ``i`` is a
    twin of every row of the same ``classes[i]`` (the same cached keys and values in
    ``past``, the same ``ids``, ``mask`` and ``positions``); the same tokens, draws and
    caches (none with ``keep=False``). ``floor``: the fewest rows a call computes each
    row's numbers alone with."""
    import torch

    from dialog_env.lm.kv_cache import row_cache

    n = ids.shape[0]
    if n < floor:
        raise ValueError(f"a batch of {n} rows is under the floor of {floor}: decode it whole")
    alike: dict[int, list[int]] = {}
    for row, c in enumerate(classes):
        alike.setdefault(c, []).append(row)
    members = list(alike.values())  # per physical row, its virtual rows
    k = 0
    while len(members) < floor:  # part twins, unasked, until the floor is met
        while len(members[k]) < 2:
            k += 1
        members.append([members[k].pop()])
    pick = torch.tensor([rows[0] for rows in members], device=ids.device)
    past.batch_select_indices(pick)
    step_ids, mask, positions = ids[pick], mask[pick], positions[pick]
    stops = torch.tensor(list(stop_ids), device=ids.device)
    active = list(range(n))  # the virtual batch, in decode_retiring's order
    tokens: list[list[int]] = [[] for _ in range(n)]
    stopped = [False] * n
    kept: list[list[tuple]] = [[] for _ in range(n)]
    calls, keyword = 0, cache_keyword(model)
    with torch.inference_mode():
        for t in range(max_new_tokens):
            past, logits = next_logits(model, keyword, step_ids, mask, positions, past)
            logprobs = torch.log_softmax(logits.double(), dim=-1)
            calls += 1
            physical = {r: p for p, rows in enumerate(members) for r in rows}
            where = [physical[r] for r in active]
            nxt = choose(logprobs[where], t, torch.tensor(active, device=ids.device))
            ends = torch.isin(nxt, stops).tolist()
            drawn = dict(zip(active, nxt.tolist(), strict=True))
            for row, end, p in zip(active, ends, where, strict=True):
                tokens[row].append(drawn[row])
                stopped[row] = end
                if keep and (end or t == max_new_tokens - 1):
                    kept[row] = row_cache(past, mask, p)
            if all(ends) or t == max_new_tokens - 1:
                break
            if any(ends):
                active = [active[i] for i in compaction(ends)]
            sources, members = _regroup(members, set(active), drawn, active, floor)
            past, mask, positions = _rearrange(past, mask, positions, sources)
            step_ids = torch.tensor([[drawn[rows[0]]] for rows in members], device=ids.device)
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=-1)
            positions = positions[:, -1:] + 1
    return Decoded(tokens, stopped, calls), kept


def _regroup(members, running, drawn, active, floor):
    """The physical rows after a step, as ``(sources, members)``: each new physical row's
    old one and its virtual rows. Rows that drew different tokens part; with fewer than
    ``floor`` virtual rows running, each gets its own, in the virtual order (as
    ``decode_retiring`` holds them); otherwise twins part, unasked, until ``floor``
    physical rows run. Old rows keep their place where they can (a row no longer used
    leaves as :func:`~dialog_env.lm.generation.compaction` says), the parted ones go last.
    """
    if len(running) < floor:
        old = {r: p for p, rows in enumerate(members) for r in rows}
        return [old[r] for r in active], [[r] for r in active]
    parts: list[list[list[int]]] = []  # per old physical row, its groups by token
    for rows in members:
        by_token: dict[int, list[int]] = {}
        for r in rows:
            if r in running:
                by_token.setdefault(drawn[r], []).append(r)
        parts.append(list(by_token.values()))
    order = compaction([not groups for groups in parts])
    sources = list(order)
    groups = [parts[p][0] for p in order]
    for p in order:
        for group in parts[p][1:]:
            sources.append(p)
            groups.append(group)
    k = 0
    while len(groups) < floor:  # len(running) >= floor, so some group has two rows
        while len(groups[k]) < 2:
            k += 1
        sources.append(sources[k])
        groups.append([groups[k].pop()])
    return sources, groups


def _rearrange(past, mask, positions, sources: list[int]):
    """The cache, mask and positions with physical row ``j`` a copy of old row
    ``sources[j]``. Where ``sources`` is a compaction followed by copies (what
    :func:`_regroup` gives while twins run), rows move into holes and the copies are
    appended, without copying the batch; otherwise one general selection."""
    import torch

    kept = len(set(sources))
    head, tail = sources[:kept], sources[kept:]
    fast = len(set(head)) == kept and all(i == row or i >= kept for row, i in enumerate(head))
    if not fast or any(old not in head for old in tail):
        index = torch.tensor(sources, device=mask.device)
        past.batch_select_indices(index)
        return past, mask[index], positions[index]
    if head != list(range(mask.shape[0])):
        stay = torch.tensor(head, device=mask.device)
        past.batch_select_indices(stay)
        mask, positions = mask[stay], positions[stay]
    if tail:
        at = {old: new for new, old in enumerate(head)}
        copies = [at[old] for old in tail]
        for layer in past.layers:
            layer.append_copies(copies)
        index = torch.tensor(copies, device=mask.device)
        mask, positions = torch.cat([mask, mask[index]]), torch.cat([positions, positions[index]])
    return past, mask, positions
