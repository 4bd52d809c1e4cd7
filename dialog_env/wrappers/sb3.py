"""The SB3 VecEnv adapter's old home, kept for one release: import
:mod:`dialog_env.integrations.sb3` instead (an SB3 ``VecEnv`` over the vector env is an
integration, not a ``gym.Wrapper`` of one env). No warning is raised (the project's tests
turn ``DeprecationWarning`` from ``dialog_env`` into errors); this alias goes in the next
release.
"""

from dialog_env.integrations.sb3 import SB3VecEnv, make_sb3_vec_env

__all__ = ["SB3VecEnv", "make_sb3_vec_env"]
