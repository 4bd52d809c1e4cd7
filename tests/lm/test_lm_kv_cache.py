"""The decode loop's cache layout: packed rows, in-place retirement, prefill groups."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dialog_env.lm.generation import batched_decode, compaction
from dialog_env.lm.kv_cache import GrowingLayer, packed_cache
from dialog_env.lm.sessions import ConversationCache, prefill_groups


def _tiny_lm():
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.loading import load_causal_lm

    return load_causal_lm(TINY_MODEL_DIR)


def _row(n: int, layers: int = 2, seed: int = 0) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(4, n, 8, generator=g), torch.randn(4, n, 8, generator=g))
        for _ in range(layers)
    ]


def test_packed_cache_right_aligns_each_row_and_masks_the_padding():
    lm = _tiny_lm()
    layers = lm.model.config.num_hidden_layers
    rows = [_row(3, layers, 1), [], _row(5, layers, 2)]
    cache, mask = packed_cache(lm.model.config, rows, reserve=7)
    assert mask.tolist() == [[0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    for index, layer in enumerate(cache.layers):
        assert layer.keys.shape == (3, 4, 5, 8) and layer.capacity == 5 + 7
        assert torch.equal(layer.keys[0, :, 2:], rows[0][index][0])
        assert torch.equal(layer.values[2], rows[2][index][1])
        assert not layer.keys[0, :, :2].any() and not layer.values[1].any()  # finite zeros
    empty, none = packed_cache(lm.model.config, [[], []])
    assert none.shape == (2, 0) and empty.get_seq_length() == 0


def _filled_layer(rows: int, length: int) -> GrowingLayer:
    layer = GrowingLayer(reserve=3)
    g = torch.Generator().manual_seed(rows * 1000 + length)
    layer.update(
        torch.randn(rows, 2, length, 4, generator=g), torch.randn(rows, 2, length, 4, generator=g)
    )
    return layer


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12).filter(lambda x: not all(x)))
def test_retiring_rows_in_place_keeps_each_staying_rows_cache(leaving):
    layer = _filled_layer(len(leaving), 5)
    before_keys, before_values = layer.keys.clone(), layer.values.clone()
    buffer = layer._keys
    order = compaction(leaving)
    assert sorted(order) == [row for row, gone in enumerate(leaving) if not gone]
    assert all(i == row or i >= len(order) for row, i in enumerate(order))  # holes filled
    layer.batch_select_indices(torch.tensor(order))
    assert layer._keys is buffer  # no new buffers: only the moved rows were copied
    assert torch.equal(layer.keys, before_keys[order])
    assert torch.equal(layer.values, before_values[order])
    step = torch.randn(len(order), 2, 1, 4, generator=torch.Generator().manual_seed(len(order)))
    keys, _ = layer.update(step, step)  # the next step writes the rows that stayed
    assert keys.shape == (len(order), 2, 6, 4) and torch.equal(keys[:, :, -1:], step)


def test_any_other_selection_copies_the_selected_rows():
    layer = _filled_layer(4, 3)
    before = layer.keys.clone()
    layer.batch_select_indices(torch.tensor([2, 0]))  # reorders: not a compaction
    assert torch.equal(layer.keys, before[[2, 0]])
    with pytest.raises(ValueError, match="rows of keys"):
        layer.update(torch.zeros(4, 2, 1, 4), torch.zeros(4, 2, 1, 4))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400), st.integers(0, 400)), min_size=1, max_size=40))
def test_prefill_groups_partition_the_rows_into_runs_sorted_by_length(rows):
    fed, held = [f for f, _ in rows], [h for _, h in rows]
    groups = prefill_groups(fed, held)
    assert sorted(i for g in groups for i in g) == list(range(len(rows)))
    flat = [fed[i] for g in groups for i in g]
    assert flat == sorted(flat)  # each group is a run of the rows sorted by length


def test_a_long_reencode_does_not_pad_short_continuations(one_torch_thread):
    """One batch mixes a conversation that continues its cache with one read in full;
    the two are prefilled apart and decode as fresh prompts do."""
    lm = _tiny_lm()
    pad = lm.tokenizer.pad_token_id
    cache = ConversationCache(pad)
    short = [1, 5, 60, 70]
    out = cache.decode(lm.model, ["a"], [short], 5, stop_ids=[2])
    g = torch.Generator().manual_seed(3)
    long = [1, *torch.randint(5, 1000, (200,), generator=g).tolist()]
    second = [[*short, *out.tokens[0], 90, 91], long]
    again = cache.decode(lm.model, ["a", "b"], second, 5, stop_ids=[2])
    assert again.tokens == batched_decode(lm.model, second, 5, [2], pad).tokens
    assert prefill_groups([3, 199], [len(short) + len(out.tokens[0]) - 1, 0]) == [[0], [1]]


@pytest.mark.parametrize("in_place", [True, False], ids=["in-the-batch", "in-rounds"])
def test_a_refused_attempt_is_resampled_as_a_fresh_decode_of_its_draw(
    one_torch_thread, monkeypatch, in_place
):
    """Rows start over inside the running batch (or, for a cache that cannot be written
    in place, in rounds); each attempt writes what a decode of its prompt alone with its
    draw's uniforms writes, and the rows leave when taken or out of tries."""
    from dialog_env.lm import generation
    from dialog_env.lm.generation import decode_resampling, inverse_cdf

    if not in_place:
        monkeypatch.setattr(generation, "_restartable", lambda past: False)
    lm = _tiny_lm()
    pad = lm.tokenizer.pad_token_id
    g = torch.Generator().manual_seed(5)
    prompts = [[1, *torch.randint(5, 1000, (n,), generator=g).tolist()] for n in (3, 9, 0, 6)]
    tries, new = 3, 6
    uniforms = torch.rand(len(prompts) * tries, new, generator=g, dtype=torch.float64)
    refuse = {0: 2, 1: 0, 2: 1, 3: 5}  # attempts refused per row (row 3: all of them)
    seen: dict[int, list[list[int]]] = {r: [] for r in refuse}

    def accept(row, tokens, stopped):
        seen[row].append(list(tokens))
        return len(seen[row]) > refuse[row]

    out = decode_resampling(lm.model, prompts, new, [2], inverse_cdf(uniforms), accept, tries)
    assert out.attempts == [3, 1, 2, 3] and out.accepted == [True, True, True, False]
    for row, attempts in seen.items():
        for k, tokens in enumerate(attempts):
            alone = batched_decode(
                lm.model, [prompts[row]], new, [2], pad, inverse_cdf(uniforms[row * tries + k :])
            )
            assert tokens == alone.tokens[0], (row, k)
        assert out.tokens[row] == attempts[-1]
    assert out.steps == [sum(map(len, seen[r])) for r in range(len(prompts))]
