"""A KV cache that writes each new column in place instead of copying the whole cache.

transformers' ``DynamicLayer`` grows by ``torch.cat``: every decode step allocates and
copies the layer's keys and values in full, which on a CPU costs about twice the
attention itself (batch 64, 400 columns). :class:`GrowingLayer` keeps them in buffers
with room to spare and writes only the new columns; the keys and values the model sees
are views of the first ``n`` columns, the same numbers as the concatenated ones, so the
attention's output is unchanged bit for bit.

>>> import torch
>>> from dialog_env.lm import TINY_MODEL_DIR
>>> from dialog_env.lm.generation import cache_keyword
>>> from dialog_env.lm.loading import load_causal_lm
>>> model = load_causal_lm(TINY_MODEL_DIR).model
>>> cache = growing_cache(model.config, reserve=4)
>>> ids = torch.tensor([[1, 5, 60, 70]])
>>> out = model(input_ids=ids, use_cache=True, **{cache_keyword(model): cache})
>>> cache.get_seq_length(), cache.layers[0].capacity
(4, 8)
"""

from __future__ import annotations

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

__all__ = ["GrowingLayer", "growing_cache"]


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` backed by preallocated buffers (capacity doubles when full).

    Args:
        reserve: columns allocated beyond the first update (e.g. the new tokens to come).
    """

    def __init__(self, reserve: int = 64):
        super().__init__()
        self.reserve = max(1, int(reserve))
        self._keys = self._values = None
        self._length = 0

    @property
    def capacity(self) -> int:
        return 0 if self._keys is None else self._keys.shape[-2]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self._length + key_states.shape[-2]
        if end > self.capacity:
            self._grow(end, key_states, value_states)
        self._keys[..., self._length : end, :] = key_states
        self._values[..., self._length : end, :] = value_states
        self._length = end
        self._expose()
        return self.keys, self.values

    def _grow(self, end: int, key_states, value_states) -> None:
        capacity = max(end + self.reserve, 2 * self.capacity)
        keys = key_states.new_empty((*key_states.shape[:2], capacity, key_states.shape[-1]))
        values = value_states.new_empty((*value_states.shape[:2], capacity, value_states.shape[-1]))
        if self._length:
            keys[..., : self._length, :] = self._keys[..., : self._length, :]
            values[..., : self._length, :] = self._values[..., : self._length, :]
        self._keys, self._values = keys, values

    def _expose(self) -> None:
        self.keys = self._keys[..., : self._length, :]
        self.values = self._values[..., : self._length, :]

    def batch_select_indices(self, indices) -> None:
        if self._keys is not None:
            self._keys, self._values = self._keys[indices], self._values[indices]
            self._expose()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0 and self.is_initialized:
            self._length = max(0, self._length + tokens_to_remove)
            self._expose()
        else:
            super().crop(tokens_to_remove)

    def reset(self) -> None:
        self._keys = self._values = None
        self._length = 0
        super().reset()


def growing_cache(config, reserve: int = 64, layers=None) -> DynamicCache:
    """A ``DynamicCache`` for a model of ``config`` whose full-attention layers are
    :class:`GrowingLayer` (other layer kinds, e.g. sliding windows, are kept as they
    are); ``layers``: per layer ``(keys, values)`` to start from."""
    cache = DynamicCache(config=config)
    cache.layers = [
        GrowingLayer(reserve) if type(layer) is DynamicLayer else layer for layer in cache.layers
    ]
    for layer, (keys, values) in zip(cache.layers, layers or (), strict=False):
        layer.update(keys, values)
    return cache
