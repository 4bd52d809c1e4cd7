"""What the trainers share, in one place (as SB3's ``common/``); each trainer's own module
holds only its algorithm.

- :mod:`baselines.common.config`: configs to command lines and back (one ``--flag`` per
  field; the command line with every flag resolved, which a manifest records),
  :class:`~baselines.common.config.LoRAOptions`, and ``runs/<name>``, where a run writes
  unless ``--out`` says otherwise.
- :mod:`baselines.common.policy`: the token-level actor-critic (a causal LM plus a value
  head) of token PPO and GRPO; its checkpoints load as LM agents by name.
- :mod:`baselines.common.rollout`: the rollout types (``Message``, ``Row``), packing a
  conversation's messages into rows, and the one way a rollout is scored after it is
  played (the frozen reference's log-probs, PPO's values: packed, no grad).
- :mod:`baselines.common.evaluation`: dev evaluation on the leaderboard's dev episodes
  and the one keep-best rule every trainer selects its checkpoint by
  (``dev-board-metric-then-return``).
- :mod:`baselines.common.run`: the start (``--init``, checked by ``--init-sha256``), the
  TensorBoard writer, the torch thread count, and the one manifest writer.

Nothing is imported here, so that ``import baselines.common.config`` stays light.
"""

__all__: list[str] = []
