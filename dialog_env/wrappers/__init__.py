"""Interfaces over the text env, one concern per wrapper.

- :class:`ActActions`: ``Discrete`` dialogue acts in, realized as text.
- :class:`StateObservation`: the tracked dialogue state as a vector out.

:func:`dialog_env.interfaces.make_env` stacks them for the registered ids.
"""

from dialog_env.wrappers.actions import ActActions, as_action_index
from dialog_env.wrappers.observations import StateObservation

__all__ = ["ActActions", "StateObservation", "as_action_index"]
