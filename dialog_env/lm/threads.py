"""How many CPU threads torch runs a block on, set for the block and restored after.

The models here are small: a decode step or an RM score multiplies matrices of a few
hundred numbers, so extra intra-op threads mostly wait for each other (on a busy 2-core
machine one thread samples ~10x faster than two), and torch splits a matmul's work by
its thread count, which moves a result's last bits. Code that needs a fixed count sets
it for its own block with :func:`torch_threads` and leaves the caller's setting alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch on ``n`` intra-op CPU threads (``None``: as it is), then
    restore the count the caller had. Nothing is set when the count already is ``n``.

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
