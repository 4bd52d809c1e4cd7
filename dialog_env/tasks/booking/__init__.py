"""The restaurant search and booking task (``Dialog-v1``)."""

from dialog_env.tasks.booking.task import BookingTask

__all__ = ["BookingTask"]
