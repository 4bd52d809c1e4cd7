"""The ``dialog-bench`` command line (:mod:`dialog_bench.cli`), above every package.

It is a package of its own so that no library package (``dialog_env``, ``agents``,
``baselines``, ``leaderboard``) has to import the trainers, the leaderboard and the
agents together; ``python -m dialog_bench`` runs it as the console script does.
"""

__all__: list[str] = []
