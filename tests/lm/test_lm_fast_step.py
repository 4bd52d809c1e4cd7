"""The one-token decode step without transformers' wrapping: equal logits, bit for bit."""

from __future__ import annotations

import pytest
import torch

from dialog_env.lm import TINY_MODEL_DIR, fast_step
from dialog_env.lm.generation import batched_decode, cache_keyword, left_pad
from dialog_env.lm.kv_cache import growing_cache
from dialog_env.lm.loading import load_causal_lm


@pytest.fixture(scope="module")
def model():
    return load_causal_lm(TINY_MODEL_DIR).model


def _random_model(parallel: bool):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    config = GPTNeoXConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        use_parallel_residual=parallel,
        rotary_pct=0.5,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    return GPTNeoXForCausalLM(config).eval()


def _forward(model, ids, mask, positions, cache):
    """The model's own forward of ``ids`` after what ``cache`` holds."""
    return model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **{cache_keyword(model): cache},
    )


def _steps_both_ways(model, prompts, steps=6, seed=0):
    """Logits of ``steps`` one-token steps after a left-padded prefill, through the model's
    forward and through ``decode_step``, each on its own cache."""
    g = torch.Generator().manual_seed(seed)
    ids, mask, positions = left_pad(prompts, pad_id=0)
    first = torch.randint(4, model.config.vocab_size, (len(prompts), 1), generator=g)
    runs = []
    for fast in (False, True):
        cache = growing_cache(model.config, reserve=steps)
        m, pos, logits = mask, positions, []
        with torch.inference_mode():
            _forward(model, ids, m, pos, cache)
            step = first
            for _ in range(steps):
                m = torch.cat([m, torch.ones_like(step)], dim=-1)
                pos = pos[:, -1:] + 1
                if fast:
                    assert fast_step.supports(model, cache)
                    out = fast_step.decode_step(model, step, m, pos, cache)
                else:
                    out = _forward(model, step, m, pos, cache).logits
                logits.append(out)
                step = out[:, -1].argmax(-1, keepdim=True)
        runs.append(torch.cat(logits, dim=1))
    return runs


def test_the_shipped_model_steps_to_the_same_bits(model):
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(4, 1500, (n,), generator=g).tolist() for n in (3, 17, 40, 9)]
    slow, fast = _steps_both_ways(model, prompts)
    assert torch.equal(slow, fast)


@pytest.mark.parametrize("parallel", [False, True])
def test_either_residual_layout_steps_to_the_same_bits(parallel):
    model = _random_model(parallel)
    slow, fast = _steps_both_ways(model, [[5, 6, 7], [8, 9, 10, 11, 12], [13]])
    assert torch.equal(slow, fast)


def test_what_it_does_not_serve_goes_through_the_forward(model):
    cache = growing_cache(model.config)
    assert fast_step.supports(model, cache)
    assert not fast_step.supports(model, None)  # the first call of a decode starts bare
    model.train()
    try:
        assert not fast_step.supports(model, cache)
    finally:
        model.eval()
    with pytest.raises(ValueError, match="one token per row"):
        fast_step.decode_step(model, torch.tensor([[5, 6]]), torch.ones(1, 2), None, cache)


def test_the_decode_loop_writes_what_the_forward_alone_writes(model):
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(4, 1500, (n,), generator=g).tolist() for n in (5, 30, 12)]
    fast = batched_decode(model, prompts, 24, [2], 3, retire=True)
    with fast_step.disabled():
        assert not fast_step.supports(model, growing_cache(model.config))
        slow = batched_decode(model, prompts, 24, [2], 3, retire=True)
    assert fast_step.supports(model, growing_cache(model.config))
    assert fast.tokens == slow.tokens and fast.forward_calls == slow.forward_calls


def _prefilled_both_ways(model, held, fed):
    """The caches after prefilling ``fed`` (each row after its ``held`` tokens, themselves
    prefilled first, as a conversation's kept cache is): through the model's forward and
    through ``prefill_keys_values``."""
    caches = []
    for fast in (False, True):
        cache = growing_cache(model.config, reserve=4)
        ids, mask, positions = left_pad(held, pad_id=0)
        new_ids, new_mask, new_positions = left_pad(fed, pad_id=0)
        with torch.inference_mode():
            _forward(model, ids, mask, positions, cache)
            mask = torch.cat([mask, new_mask], dim=-1)
            positions = new_positions + torch.tensor([[len(h)] for h in held])
            if fast:
                assert fast_step.supports(model, cache)
                fast_step.prefill_keys_values(model, new_ids, mask, positions, cache)
            else:
                _forward(model, new_ids, mask, positions, cache)
        caches.append([(layer.keys.clone(), layer.values.clone()) for layer in cache.layers])
    return caches


@pytest.mark.parametrize("parallel", [False, True])
def test_a_prefill_of_keys_and_values_alone_caches_the_forwards_bits(model, parallel):
    g = torch.Generator().manual_seed(1)
    shipped = parallel is False
    net = model if shipped else _random_model(parallel)
    vocab = net.config.vocab_size
    held = [torch.randint(4, vocab, (n,), generator=g).tolist() for n in (40, 7, 23)]
    fed = [torch.randint(4, vocab, (n,), generator=g).tolist() for n in (5, 30, 17)]
    full, fast = _prefilled_both_ways(net, held, fed)
    assert len(full) == len(fast) == net.config.num_hidden_layers
    for (k_full, v_full), (k_fast, v_fast) in zip(full, fast, strict=True):
        assert torch.equal(k_full, k_fast) and torch.equal(v_full, v_fast)
