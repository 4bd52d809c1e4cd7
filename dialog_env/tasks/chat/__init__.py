"""The chat task: open requests about the restaurant world (``Dialog-Chat-v1``, ``ChatGPT-v1``)."""

from dialog_env.tasks.chat.task import ChatTask

__all__ = ["ChatTask"]
