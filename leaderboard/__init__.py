"""The leaderboard: identical seeded episodes for every agent, results verified by replay.

- ``episodes``: the fixed, hashed episode sets (``dev``, ``test``) of each env id.
- ``rollout``, ``env_slots``: play episodes side by side (agent or recorded messages).
- ``evaluate``: ``dialog-bench evaluate``, an agent's results file.
- ``results`` (+ ``results.schema.json``): the results file format, read strictly;
  ``schema``: the bounded, linear-time validator it is read with.
- ``verify``: replay verification; ``store``: the SQLite store (entries labelled
  verified or declared); ``submit``: a results file (declared) or a checkpoint the
  leaderboard plays itself (verified).
- ``stats``, ``standings``: bootstrap CIs, IQM, paired differences, ranks and ties.
- ``render``, ``html_page``: terminal, Markdown, JSON and HTML (with plots) leaderboards;
  ``learning_curves``: the shipped checkpoints' manifest curves that the HTML page plots.
- ``run``: ``dialog-bench run``, every shipped baseline end to end, and ``--publish``.
- ``cli``: the ``dialog-bench`` command.
"""

__all__: list[str] = []
