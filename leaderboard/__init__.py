"""The leaderboard: identical seeded episodes for every agent, results verified by replay.

- ``episodes``: the fixed, hashed episode sets (``dev``, ``test``) of each env id.
- ``rollout``, ``env_slots``: play episodes side by side (agent or recorded messages).
- ``evaluate``: ``dialog-bench evaluate``, an agent's results file.
- ``results`` (+ ``results.schema.json``): the results file format, read strictly.
- ``verify``: replay verification; ``store``: the SQLite store; ``submit``: both together.
- ``stats``, ``standings``: bootstrap CIs, IQM, paired differences, ranks and ties.
- ``render``, ``html_page``: terminal, Markdown, JSON and HTML (with plots) leaderboards.
- ``run``: ``dialog-bench run``, every shipped baseline end to end, and ``--publish``.
- ``cli``: the ``dialog-bench`` command.
"""

__all__: list[str] = []
