"""One decode step of a GPT-NeoX model without transformers' per-call machinery, and a
prefill that computes only the keys and values it caches (:func:`prefill_keys_values`).

A decode step feeds one token per row. transformers' forward wraps that in output
capturing, kwarg deprecation, a 4-D mask built by ``create_causal_mask`` and a module
call per layer norm and linear; for the ~1M-parameter models shipped here that wrapping
is a fifth to a quarter of a step (batch 1: a third). :func:`decode_step` is the same
arithmetic, op for op (the same ``F.linear``, ``F.layer_norm``, rotary halves and
``scaled_dot_product_attention`` on the same tensors), so its logits are **equal bit for
bit** to the model's own (``tests/lm/test_lm_fast_step.py``); only the Python around them
is gone. It serves any ``GPTNeoXForCausalLM`` in eval mode with SDPA attention and a
cache of :class:`~dialog_env.lm.kv_cache.GrowingLayer` layers; :func:`supports` says
whether it applies, and the decode loop (``dialog_env.lm.generation``) falls back to the
model's forward otherwise (other architectures, prompts, training).

>>> import torch
>>> from dialog_env.lm import TINY_MODEL_DIR
>>> from dialog_env.lm.generation import cache_keyword
>>> from dialog_env.lm.kv_cache import growing_cache
>>> from dialog_env.lm.loading import load_causal_lm
>>> model = load_causal_lm(TINY_MODEL_DIR).model
>>> ids, mask = torch.tensor([[1, 5, 60, 70]]), torch.ones(1, 5, dtype=torch.long)
>>> a, b = growing_cache(model.config, 4), growing_cache(model.config, 4)
>>> with torch.inference_mode():
...     _ = model(input_ids=ids, use_cache=True, **{cache_keyword(model): a})
...     _ = model(input_ids=ids, use_cache=True, **{cache_keyword(model): b})
...     step, at = torch.tensor([[80]]), torch.tensor([[4]])
...     slow = model(input_ids=step, attention_mask=mask, position_ids=at, use_cache=True,
...                  **{cache_keyword(model): a}).logits
...     fast = decode_step(model, step, mask, at, b)
>>> supports(model, b), torch.equal(slow, fast)
(True, True)
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = [
    "below_last_layer",
    "decode_step",
    "disabled",
    "last_layer_qkv",
    "prefill_keys_values",
    "supports",
]

_enabled = True


@contextmanager
def disabled():
    """Within it every step goes through the model's own forward (the reference that
    ``bench.decode_speed`` and the tests compare with)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def supports(model, cache) -> bool:
    """Whether :func:`decode_step` computes exactly what ``model``'s forward would (and is
    not :func:`disabled`)."""
    from transformers import GPTNeoXForCausalLM

    from dialog_env.lm.kv_cache import GrowingLayer

    config = getattr(model, "config", None)
    return (
        _enabled
        and type(model) is GPTNeoXForCausalLM
        and not model.training
        and getattr(config, "_attn_implementation", None) == "sdpa"
        and cache is not None
        and all(type(layer) is GrowingLayer for layer in getattr(cache, "layers", [None]))
        and len(cache.layers) == len(model.gpt_neox.layers)
    )


def _rotate_half(x):
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _layer_norm(x, norm):
    import torch.nn.functional as F

    return F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)


def decode_step(model, step_ids, mask, positions, cache):
    """The logits ``model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
    cache=cache).logits`` of a ``(batch, 1)`` step, the new keys and values written into
    ``cache`` as the model would write them.

    ``mask``: ``(batch, cached + 1)``, 1 on real columns; ``positions``: ``(batch, 1)``.
    """
    import torch
    import torch.nn.functional as F

    neox = model.gpt_neox
    batch, width = step_ids.shape
    if width != 1:
        raise ValueError(f"decode_step feeds one token per row, got {width}")
    hidden = F.embedding(step_ids, neox.embed_in.weight)
    cos, sin = neox.rotary_emb(hidden, position_ids=positions)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    rotary = cos.shape[-1]
    # For one query per row the causal mask is the padding mask (every cached column is
    # in the past); the model builds the same booleans in (batch, 1, 1, columns).
    allowed = mask.bool()[:, None, None, :]
    for layer, kept in zip(neox.layers, cache.layers, strict=True):
        attention = layer.attention
        head = attention.head_size
        qkv = F.linear(
            _layer_norm(hidden, layer.input_layernorm),
            attention.query_key_value.weight,
            attention.query_key_value.bias,
        )
        query, key, value = qkv.view(batch, 1, -1, 3 * head).transpose(1, 2).chunk(3, dim=-1)
        q_rot, k_rot = query[..., :rotary], key[..., :rotary]
        query = torch.cat([(q_rot * cos) + (_rotate_half(q_rot) * sin), query[..., rotary:]], -1)
        key = torch.cat([(k_rot * cos) + (_rotate_half(k_rot) * sin), key[..., rotary:]], -1)
        keys, values = kept.update(key, value)
        out = F.scaled_dot_product_attention(
            query,
            keys,
            values,
            attn_mask=allowed,
            dropout_p=0.0,
            scale=attention.scaling,
            is_causal=False,
        )
        out = out.transpose(1, 2).contiguous().reshape(batch, 1, -1).contiguous()
        out = F.linear(out, attention.dense.weight, attention.dense.bias)
        mlp = layer.mlp
        if layer.use_parallel_residual:
            ff = _layer_norm(hidden, layer.post_attention_layernorm)
        else:
            out = out + hidden
            ff = _layer_norm(out, layer.post_attention_layernorm)
        ff = F.linear(ff, mlp.dense_h_to_4h.weight, mlp.dense_h_to_4h.bias)
        ff = F.linear(mlp.act(ff), mlp.dense_4h_to_h.weight, mlp.dense_4h_to_h.bias)
        hidden = ff + out + hidden if layer.use_parallel_residual else ff + out
    return F.linear(_layer_norm(hidden, neox.final_layer_norm), model.lm_head.weight)


def below_last_layer(model, ids, mask, positions, cache=None):
    """Run a GPT-NeoX model's embedding and every layer but the last over ``ids`` as the
    model's own forward runs them (the same modules, causal mask and rotary embeddings;
    each layer writes its keys and values into ``cache`` when one is given). Returns the
    last layer's input, the causal mask and the rotary embeddings: what
    :func:`last_layer_qkv` and a caller's own last-layer work need."""
    from transformers.masking_utils import create_causal_mask

    base = model.gpt_neox
    hidden = base.embed_in(ids)
    causal = create_causal_mask(
        config=base.config,
        inputs_embeds=hidden,
        attention_mask=mask,
        cache=cache,
        position_ids=positions,
    )
    rotary = base.rotary_emb(hidden, position_ids=positions)
    for layer in base.layers[:-1]:
        hidden = layer(
            hidden,
            attention_mask=causal,
            position_ids=positions,
            layer_past=cache,
            use_cache=cache is not None,
            position_embeddings=rotary,
        )
    return hidden, causal, rotary


def last_layer_qkv(model, hidden, rotary):
    """The last layer's query, key and value of its input ``hidden`` (heads first, rotary
    embedding applied), as its attention computes them."""
    from transformers.models.gpt_neox import modeling_gpt_neox as neox

    layer = model.gpt_neox.layers[-1]
    attention = layer.attention
    qkv = attention.query_key_value(layer.input_layernorm(hidden))
    shape = (*hidden.shape[:-1], -1, 3 * attention.head_size)
    query, key, value = qkv.view(shape).transpose(1, 2).chunk(3, dim=-1)
    query, key = neox.apply_rotary_pos_emb(query, key, *rotary)
    return query, key, value


def prefill_keys_values(model, ids, mask, positions, cache) -> None:
    """What ``model(input_ids=ids, attention_mask=mask, position_ids=positions,
    cache=cache)`` writes into ``cache``, without what only its logits need.

    A prefill that is followed by a decode step (which feeds the prompt's last token for
    its logits) reads nothing of the forward but the keys and values it caches, and a
    layer's keys and values are a function of that layer's input alone. So every layer
    but the last runs as the model's forward runs it (:func:`below_last_layer`), and of
    the last only the layer norm, the fused query/key/value projection and the rotary
    embedding run (:func:`last_layer_qkv`): its attention, MLP, the final norm and the
    head, a fifth of a prefill's work on the shipped 4-layer model, would be thrown away.
    The keys and values are the forward's, bit for bit
    (``tests/lm/test_lm_fast_step.py``). ``model`` and ``cache`` must pass
    :func:`supports`.
    """
    import torch

    with torch.inference_mode():
        hidden, _, rotary = below_last_layer(model, ids, mask, positions, cache)
        _, key, value = last_layer_qkv(model, hidden, rotary)
        cache.update(key, value, model.gpt_neox.layers[-1].attention.layer_idx)
