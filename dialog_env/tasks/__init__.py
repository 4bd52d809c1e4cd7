"""Tasks of the dialogue benchmark: the :class:`Task` protocol and one subpackage per task.

A task is everything that makes one kind of conversation: goals, the simulated user, its
tools, the reward, and how its text is understood. The rest of the env knows a task only
through the protocols below, which state all that they use of it:

- :class:`~dialog_env.core.DialogEnv` and :class:`~dialog_env.vector.DialogVectorEnv`
  step it (:meth:`Task.reset_steps`, :meth:`Task.step_steps`, :meth:`Task.summary`) and
  voice its user with their own voice (``user_model=``), which drives those generators;
- the act-level and state-observation wrappers read :attr:`Task.assistant_acts`,
  :attr:`Task.state_features`, :meth:`Task.new_tracker`, :meth:`Task.realize` and
  :meth:`Task.state_vector`;
- the LM voice (:mod:`dialog_env.lm`) takes :attr:`Task.template_voice`: the task's
  delexicalized voice, which also holds the task's parser
  (:meth:`~dialog_env.voicing.TaskVoice.reads_back`; the protocol lives in
  :mod:`dialog_env.voicing`, beside :class:`~dialog_env.voicing.UserVoice`, and is
  re-exported here).

The booking task (:class:`dialog_env.tasks.booking.BookingTask`) is the first
implementation. A new task adds a subpackage, a class that satisfies :class:`Task` and a
``TASKS`` entry; ``tests/tasks/test_task_contract.py`` then checks it with every other task.

>>> task = make_task("booking")
>>> isinstance(task, Task), isinstance(task.template_voice, TaskVoice)
(True, True)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dialog_env.entry_points import load_entry_point
from dialog_env.text import Turn
from dialog_env.voicing import Stepping, TaskVoice, UserVoice

__all__ = ["TASKS", "Task", "TaskStep", "TaskVoice", "Tracker", "make_task"]

#: Task name -> "module:class"; imported only when the task is made.
TASKS = {
    "booking": "dialog_env.tasks.booking.task:BookingTask",
    "chat": "dialog_env.tasks.chat.task:ChatTask",
}


@dataclass
class TaskStep:
    """What one assistant message led to."""

    turns: list[Turn]  # the turns that follow the message: a tool result or the user's answer
    reward_terms: dict[str, float]  # the step's reward, term by term (their sum is the reward)
    terminated: bool = False  # the user ended the conversation
    success: bool = False  # ... with its goal met
    tool_call: bool = False  # the message went to a tool, not to the user
    user_acts: list[str] = field(default_factory=list)  # the user's acts, for ``info``
    info: dict[str, Any] = field(default_factory=dict)  # task-specific ``info`` entries


@runtime_checkable
class Tracker(Protocol):
    """Keeps a dialogue state in step with a growing list of turns (``info["turns"]``)."""

    state: Any

    def reset(self) -> None:
        """Forget every turn: back to the empty state."""
        ...

    def sync(self, turns: list[dict[str, str]]) -> Any:
        """Read the turns not seen yet; return the state."""
        ...


@runtime_checkable
class Task(Protocol):
    """One kind of conversation, as the env, its wrappers and the voices use it.

    Built by :func:`make_task` with the keyword arguments ``split`` (``"train"`` or
    ``"test"`` goals), ``patience``, ``max_turns`` and ``voice`` (``None``: its
    :attr:`template_voice`), and any of its own (the chat task's ``reward``). All
    randomness comes from the ``rng`` each call is given (the env's ``np_random``), so
    an episode is a function of its seed and the actions.
    """

    #: The task's name, its key in :data:`TASKS`.
    name: str
    #: The voice of the task's own :meth:`reset` and :meth:`step` (``voice=``; by default
    #: :attr:`template_voice`). An env keeps its own voice (``DialogEnv.voice``, from
    #: ``user_model=``) and drives :meth:`reset_steps` and :meth:`step_steps` with it.
    voice: UserVoice
    #: The task's own delexicalized voice: the template, its parser and placeholders.
    template_voice: TaskVoice
    #: Names of the assistant's dialogue acts: ``Discrete(len(...))`` of the act interface.
    assistant_acts: Sequence[str]
    #: Names of the entries of :meth:`state_vector` (the state observation).
    state_features: Sequence[str]

    def reset(self, rng: np.random.Generator) -> list[Turn]:
        """Start an episode: its opening turns, voiced by :attr:`voice`."""
        ...

    def step(self, message: str, rng: np.random.Generator) -> TaskStep:
        """What an (already normalized) assistant message leads to."""
        ...

    def reset_steps(self, rng: np.random.Generator) -> Stepping[list[Turn]]:
        """:meth:`reset` as a generator that yields each user turn it needs voiced."""
        ...

    def step_steps(self, message: str, rng: np.random.Generator) -> Stepping[TaskStep]:
        """:meth:`step` as a generator that yields each user turn it needs voiced."""
        ...

    def summary(self) -> tuple[dict, dict]:
        """``(goal, metrics)`` of the current episode, JSON-ready; metrics hold
        ``success``, ``turns``, ``user_turns`` and ``voice_fallbacks``."""
        ...

    def new_tracker(self) -> Tracker:
        """A fresh tracker of the dialogue state (for the act and state wrappers)."""
        ...

    def realize(self, act: int, state: Any) -> str:
        """The message of assistant act number ``act`` in a tracked ``state``."""
        ...

    def state_vector(self, state: Any) -> np.ndarray:
        """A tracked state as a float32 vector in [0, 1], one entry per state feature."""
        ...


def make_task(name: str, **kwargs: Any) -> Task:
    """Build the task called ``name`` with its keyword arguments (see :class:`Task`)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    cls = load_entry_point(TASKS[name])
    unknown = sorted(set(kwargs) - set(inspect.signature(cls).parameters))
    if unknown:
        raise ValueError(f"task {name!r} takes no argument {', '.join(map(repr, unknown))}")
    return cls(**kwargs)
