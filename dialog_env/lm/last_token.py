"""A sequence classifier's score of one unpadded row, without the last layer's unused rows.

A reward model (``GPTNeoXForSequenceClassification``) scores a reply by its head's output
at the row's last token. Every layer but the last must run over every token (their keys
and values feed the attention above them), but of the last layer only the rows that reach
the head matter: the others' attention output, dense projection, MLP, final norm and head
are computed and thrown away, about a fifth of the forward of a 256-token row of the
shipped 4-layer RM.

:func:`last_token_logit` runs the layers below the last as the model's own forward does
(the same modules, the same causal mask, the same rotary embeddings), and of the last
layer it runs the fused query/key/value projection over every row (the keys and values)
and the rest over the last :data:`~dialog_env.lm.sessions.EXACT_ROWS` rows only: a matrix
product of at least that many rows gives each row the numbers it gets in the full
forward, and the attention of those rows reads the same keys over the same width, so the
score is the full forward's to the bit on this CPU (``tests/lm/test_last_token.py``
compares them over hundreds of real replies; on another BLAS they agree up to float
rounding, as any two batch shapes do).

It serves one architecture, the shipped RM's (GPT-NeoX, sdpa attention); for any other
model :func:`supports_last_token` is False and the caller runs the plain forward.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FAST_LAST_TOKEN", "kept_rows", "last_token_logit", "supports_last_token"]

#: Whether :func:`supports_last_token` lets callers take the shortcut (False: every score
#: comes from the model's plain forward, the reference the shortcut is checked against).
FAST_LAST_TOKEN = True


def kept_rows(width: int) -> int:
    """How many of a row's last tokens the last layer computes past its attention: at
    least :data:`~dialog_env.lm.sessions.EXACT_ROWS`, and all but a multiple of it, so that
    each kept row sits in the matrix product's blocks where it sat in the full forward
    (measured: fewer rows, or a cut at other offsets, moves some rows' last bits).

    >>> kept_rows(256), kept_rows(250), kept_rows(20), kept_rows(9)
    (16, 26, 20, 9)
    """
    from dialog_env.lm.sessions import EXACT_ROWS

    if width <= EXACT_ROWS:
        return width
    return width - (width - EXACT_ROWS) // EXACT_ROWS * EXACT_ROWS


def supports_last_token(model: Any) -> bool:
    """Whether :func:`last_token_logit` can score rows of ``model``: a one-output
    ``GPTNeoXForSequenceClassification`` with sdpa attention, on the CPU, in eval mode."""
    from transformers import GPTNeoXForSequenceClassification

    return (
        FAST_LAST_TOKEN
        and type(model) is GPTNeoXForSequenceClassification
        and model.device.type == "cpu"
        and model.config.num_labels == 1
        and model.config._attn_implementation == "sdpa"
        and not model.training
    )


def last_token_logit(model: Any, ids: list[int]) -> float:
    """The head's output at the last token of one unpadded row ``ids`` (what
    ``model(input_ids=[ids]).logits[0, 0]`` is), computing only the last layer's rows that
    reach the head. ``model`` must pass :func:`supports_last_token`."""
    import torch

    from dialog_env.lm.fast_step import below_last_layer

    with torch.inference_mode():
        input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
        positions = torch.arange(len(ids), device=model.device)[None]
        x, mask, rotary = below_last_layer(model, input_ids, torch.ones_like(input_ids), positions)
        x = _last_layer_rows(model, x, mask, rotary, kept_rows(len(ids)))
        return float(model.score(model.gpt_neox.final_layer_norm(x))[0, -1, 0])


def _last_layer_rows(model: Any, x: Any, mask: Any, rotary: Any, keep: int) -> Any:
    """The output of the last layer (a ``GPTNeoXLayer``) at the last ``keep`` rows of its
    input ``x``, each number as the layer's full forward computes it: its attention as that
    forward runs it (every row's query; a call of other shapes sums in another order), the
    rest over the kept rows."""
    from transformers.models.gpt_neox import modeling_gpt_neox as neox

    from dialog_env.lm.fast_step import last_layer_qkv

    layer = model.gpt_neox.layers[-1]
    attention = layer.attention
    query, key, value = last_layer_qkv(model, x, rotary)
    interface = neox.ALL_ATTENTION_FUNCTIONS.get_interface(
        attention.config._attn_implementation, neox.eager_attention_forward
    )
    out, _ = interface(attention, query, key, value, mask, scaling=attention.scaling, dropout=0.0)
    out = attention.dense(out[:, -keep:].reshape(1, keep, -1).contiguous())
    x = x[:, -keep:]
    if layer.use_parallel_residual:
        return layer.mlp(layer.post_attention_layernorm(x)) + out + x
    out = out + x
    return layer.mlp(layer.post_attention_layernorm(out)) + out
