"""dialog-bench's environments: ``import dialog_env`` registers ``Dialog-v1`` and friends.

>>> import gymnasium as gym, dialog_env
>>> "Dialog-v1" in gym.registry
True
"""

from dialog_env.registration import ENV_IDS, register_envs

__all__ = ["ENV_IDS", "DialogEnv", "register_envs"]
__version__ = "0.1.0"

register_envs()


def __getattr__(name: str):
    # The env class is imported on first use, so that `import dialog_env` stays light.
    if name == "DialogEnv":
        from dialog_env.core import DialogEnv

        return DialogEnv
    raise AttributeError(f"module 'dialog_env' has no attribute {name!r}")
