"""Tasks of the dialogue benchmark, one subpackage each.

A task offers ``reset(rng) -> list[Turn]``, ``step(message, rng) -> TaskStep`` and
``summary() -> (goal, metrics)``; see :mod:`dialog_env.tasks.booking.task`.
"""

from __future__ import annotations

from dialog_env.entry_points import load_entry_point

__all__ = ["TASKS", "make_task"]

#: Task name -> "module:class"; imported only when the task is made.
TASKS = {"booking": "dialog_env.tasks.booking.task:BookingTask"}


def make_task(name: str, **kwargs):
    """Build the task called ``name`` with its keyword arguments."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return load_entry_point(TASKS[name])(**kwargs)
