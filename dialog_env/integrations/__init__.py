"""Adapters that meet other ecosystems where they work; each needs only its own extra.

- :mod:`dialog_env.integrations.sb3`: Stable-Baselines3's ``VecEnv`` over the batched
  vector env, with its ``VecMonitor`` on request (extra ``dev``, or stable-baselines3).
- :mod:`dialog_env.integrations.trl`: Dialog-v1 as a TRL ``GRPOTrainer``
  ``environment_factory`` (extra ``trl``).
- :mod:`dialog_env.integrations.rllib`: the ids registered with RLlib's ``register_env``
  and a PPO config on ``Dialog-Acts-v1`` (extra ``rllib``). Sharded evaluation on Ray is
  the leaderboard's: ``leaderboard.ray_runner`` (extra ``ray``).
- :mod:`dialog_env.integrations.openenv`: any id as an OpenEnv environment, its server
  (``dialog-bench serve-env``) and its ``EnvClient`` (extra ``openenv``).
- :mod:`dialog_env.integrations.verifiers`: ``load_environment`` for verifiers, a
  ``MultiTurnEnv`` whose rubric is the env's reward (extra ``verifiers``).

Importing this package imports none of them.
"""

__all__: list[str] = []
