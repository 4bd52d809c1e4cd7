"""Adapters that meet other ecosystems where they work; each needs only its own extra.

- :mod:`dialog_env.integrations.trl`: Dialog-v1 as a TRL ``GRPOTrainer``
  ``environment_factory`` (extra ``trl``).

Importing this package imports none of them.
"""

__all__: list[str] = []
