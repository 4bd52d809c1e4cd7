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

from collections.abc import Sequence

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

__all__ = ["GrowingLayer", "growing_cache", "packed_cache", "row_cache"]


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
        self._rows = 0  # rows in use: the first `_rows` of the buffers' batch dimension

    @property
    def capacity(self) -> int:
        return 0 if self._keys is None else self._keys.shape[-2]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self._keys is None:
            self._rows = key_states.shape[0]
        elif key_states.shape[0] != self._rows:
            raise ValueError(f"{key_states.shape[0]} rows of keys for a cache of {self._rows}")
        end = self._length + key_states.shape[-2]
        if end > self.capacity:
            self._grow(end, key_states, value_states)
        self._keys[: self._rows, :, self._length : end, :] = key_states
        self._values[: self._rows, :, self._length : end, :] = value_states
        self._length = end
        self._expose()
        return self.keys, self.values

    def _grow(self, end: int, key_states, value_states) -> None:
        capacity = max(end + self.reserve, 2 * self.capacity)
        keys = key_states.new_empty((*key_states.shape[:2], capacity, key_states.shape[-1]))
        values = value_states.new_empty((*value_states.shape[:2], capacity, value_states.shape[-1]))
        if self._length:
            keys[..., : self._length, :] = self.keys
            values[..., : self._length, :] = self.values
        self._keys, self._values = keys, values

    def _expose(self) -> None:
        self.keys = self._keys[: self._rows, :, : self._length, :]
        self.values = self._values[: self._rows, :, : self._length, :]

    def adopt(self, keys, values, length: int) -> None:
        """Take ``keys`` and ``values`` (batch, heads, capacity, head_dim) as the buffers,
        their first ``length`` columns filled (:func:`packed_cache`)."""
        if not self.is_initialized:
            self.lazy_initialization(keys, values)
        self._keys, self._values = keys, values
        self._length, self._rows = int(length), keys.shape[0]
        self._expose()

    def write_row(self, row: int, start: int, keys, values) -> None:
        """Write one row's ``keys`` and ``values`` (heads, n, head_dim) over its filled
        columns ``start`` to ``start + n`` (a row that starts over in a running batch)."""
        end = start + keys.shape[-2]
        if not 0 <= row < self._rows or not 0 <= start <= end <= self._length:
            raise ValueError(f"columns {start}-{end} of row {row} are outside the cache")
        self._keys[row, :, start:end] = keys
        self._values[row, :, start:end] = values

    def batch_select_indices(self, indices) -> None:
        """Keep the rows ``indices`` (in that order).

        When the selection only drops rows, each row kept at or after the new end moves
        into a hole before it (``generation.compaction`` builds such orders), so only
        those rows are copied; the buffers stay and the batch is their first rows. Any
        other selection copies the filled columns of the rows kept.
        """
        if self._keys is None:
            return
        order = [int(i) for i in indices]
        kept = len(order)
        if all(i == row or i >= kept for row, i in enumerate(order)) and len(set(order)) == kept:
            for row, i in enumerate(order):
                if i != row:
                    self._keys[row, :, : self._length] = self._keys[i, :, : self._length]
                    self._values[row, :, : self._length] = self._values[i, :, : self._length]
        else:
            keys = self._keys.new_empty((kept, *self._keys.shape[1:]))
            values = self._values.new_empty((kept, *self._values.shape[1:]))
            keys[..., : self._length, :] = self.keys[indices]
            values[..., : self._length, :] = self.values[indices]
            self._keys, self._values = keys, values
        self._rows = kept
        self._expose()

    def append_copies(self, rows: Sequence[int]) -> None:
        """Append a copy of each of ``rows`` (their filled columns) after the rows in use,
        in the buffers' spare rows where they have them (a twin row that parts from its
        row in ``dialog_env.lm.twin_decode``)."""
        if self._keys is None or not rows:
            return
        end = self._rows + len(rows)
        if end > self._keys.shape[0]:  # no spare rows: grow the batch
            grown = (end, *self._keys.shape[1:])
            keys, values = self._keys.new_empty(grown), self._values.new_empty(grown)
            keys[: self._rows, :, : self._length] = self.keys
            values[: self._rows, :, : self._length] = self.values
            self._keys, self._values = keys, values
        for offset, row in enumerate(rows):
            self._keys[self._rows + offset, :, : self._length] = self._keys[row, :, : self._length]
            self._values[self._rows + offset, :, : self._length] = self._values[
                row, :, : self._length
            ]
        self._rows = end
        self._expose()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0 and self.is_initialized:
            self._length = max(0, self._length + tokens_to_remove)
            self._expose()
        else:
            super().crop(tokens_to_remove)

    def reset(self) -> None:
        self._keys = self._values = None
        self._length = self._rows = 0
        super().reset()


def growing_cache(config, reserve: int = 64) -> DynamicCache:
    """A ``DynamicCache`` for a model of ``config`` whose full-attention layers are
    :class:`GrowingLayer` (other layer kinds, e.g. sliding windows, are kept as they
    are); :func:`packed_cache` starts one from rows' keys and values."""
    cache = DynamicCache(config=config)
    cache.layers = [
        GrowingLayer(reserve) if type(layer) is DynamicLayer else layer for layer in cache.layers
    ]
    return cache


def row_cache(cache, mask, position: int) -> list[tuple]:
    """The keys and values of one batch row of ``cache`` over its real columns (where
    ``mask[position]`` is 1), per layer ``(keys, values)`` of shape ``(heads, n,
    head_dim)``: a row as :func:`packed_cache` takes it back."""
    columns = torch.nonzero(mask[position], as_tuple=True)[0]
    return [
        (layer.keys[position][:, columns], layer.values[position][:, columns])
        for layer in cache.layers
    ]


def packed_cache(config, rows, reserve: int = 64, device=None):
    """A :func:`growing_cache` holding several rows' keys and values side by side, each
    right-aligned (left-padded with zeros) to the widest, and its ``(batch, width)``
    attention mask (1 on each row's own columns).

    ``rows[i]``: per layer ``(keys, values)`` of shape ``(heads, n_i, head_dim)``, or an
    empty list for a row with nothing cached (``n_i = 0``). ``reserve`` columns are left
    free after ``width`` for what the decode writes next.
    """
    widths = [rows_kv[0][0].shape[-2] if rows_kv else 0 for rows_kv in rows]
    width = max(widths, default=0)
    cache = growing_cache(config, reserve)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for row, n in enumerate(widths):
        mask[row, width - n :] = 1
    if width == 0:
        return cache, mask
    sample = next(r for r in rows if r and r[0][0].shape[-2])
    for index, layer in enumerate(cache.layers[: len(sample)]):
        k0, v0 = sample[index]
        keys = k0.new_empty((len(rows), k0.shape[0], width + max(1, reserve), k0.shape[-1]))
        values = v0.new_empty((len(rows), v0.shape[0], width + max(1, reserve), v0.shape[-1]))
        for row, (kept, n) in enumerate(zip(rows, widths, strict=True)):
            # padding columns must hold finite numbers: masked, they weigh exactly 0
            keys[row, :, : width - n].zero_()
            values[row, :, : width - n].zero_()
            if n:
                keys[row, :, width - n : width] = kept[index][0]
                values[row, :, width - n : width] = kept[index][1]
        if isinstance(layer, GrowingLayer):
            layer.adopt(keys, values, width)
        else:  # another layer kind (e.g. a sliding window) takes them as any update
            layer.update(keys[..., :width, :], values[..., :width, :])
    return cache, mask
