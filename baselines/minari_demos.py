"""Act-interface demonstrations as a Minari dataset (optional extra ``minari``).

The expert (or the noisy expert) plays ``Dialog-Acts-v1`` on train-split seeds through
Minari's episode buffers: observations are the tracked state vectors (``Box``; or the
transcript, a ``Text`` space, with ``observation="text"``), actions the ``Discrete``
assistant acts, rewards the env's. ``minari.load_dataset(ID)`` reads it back; each
episode keeps its seed in Minari's episode metadata and the env spec in the dataset's,
so :func:`replay_minari_episode` resets ``dataset.recover_environment()`` with the seed,
sends the actions again and gets the same rewards.

The expert decides from the transcript and speaks through the act realizer, so its
act-interface episodes are the same conversations as its text demos (``dialog-bench
demos``) on the same seeds, with the same returns. The noisy expert's act episodes are
not its text ones: leaving a requested fact out of an answer is a slip of wording that
no act expresses, so in act demos it only slips into wrong acts and asks again.

Stored in Minari's arrow format (``minari[arrow]``, i.e. pyarrow), under
``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ACT_ENV_ID", "DATA_FORMAT", "replay_minari_episode", "write_minari_demos"]

ACT_ENV_ID = "Dialog-Acts-v1"
#: Minari's arrow storage holds ``Box``, ``Discrete`` and ``Text`` spaces, with pyarrow only.
DATA_FORMAT = "arrow"


def _minari():
    try:
        import minari
    except ImportError:
        raise ImportError(
            "writing Minari datasets needs the minari extra: pip install 'dialog-bench[minari]'"
        ) from None
    return minari


def write_minari_demos(
    dataset_id: str,
    generator: str,
    seeds: Sequence[int],
    env_id: str = ACT_ENV_ID,
    observation: str = "state",
    **env_kwargs: Any,
):
    """Play ``generator`` on act-interface ``env_id`` for train ``seeds``; write and return
    the Minari dataset ``dataset_id`` (e.g. ``"dialog-bench/booking/expert-v0"``).

    ``env_kwargs`` go to the env (``user_model="template"`` for a quick one). Raises
    ``ValueError`` for an unknown generator, a non-act env, seeds outside the training
    range, or an id that Minari already holds.
    """
    import gymnasium as gym

    from agents import load_agent
    from baselines.demo_episodes import GENERATORS, train_episodes

    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
    if not seeds:
        raise ValueError("no seeds: a Minari dataset needs at least one episode")
    kwargs = train_episodes(env_id, seeds, **env_kwargs).env_spec["kwargs"]
    if kwargs.get("interface") != "act":
        raise ValueError(
            f"{env_id} is not an act-interface env (interface={kwargs.get('interface')!r})"
        )
    minari = _minari()
    from minari.data_collector import EpisodeBuffer
    from minari.storage import get_dataset_path

    if get_dataset_path(dataset_id).exists():
        raise ValueError(f"Minari already holds a dataset {dataset_id!r}: give another id")
    env = gym.make(env_id, **{**kwargs, "observation": observation})
    cap = env.unwrapped.max_observation_chars  # what the text agent would have read
    agent = load_agent(generator)
    try:
        buffers = [
            _play(env, agent, int(seed), index, cap, EpisodeBuffer)
            for index, seed in enumerate(seeds)
        ]
    finally:
        env.close()
    # From buffers rather than through minari.DataCollector, whose step needs jax.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`author_email` is set to None")
        return minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env.spec,
            eval_env=env.spec,
            algorithm_name=generator,
            author="dialog-bench",
            code_permalink="baselines/minari_demos.py",
            description=(
                f"{generator} on {env_id} (observation={observation!r}, split='train'), seeds "
                f"{min(seeds)}-{max(seeds)}: Discrete assistant acts, the env's rewards."
            ),
            data_format=DATA_FORMAT,
            requirements=[f"dialog-bench=={_version()}"],
        )


def _play(env, agent, seed: int, index: int, cap: int, buffer_class):
    """One episode of ``agent``'s acts, as a Minari episode buffer."""
    from dialog_env.text import Turn, format_transcript, truncate_transcript

    obs, info = env.reset(seed=seed)
    agent.reset(seed=seed)
    observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
    done = False
    while not done:
        transcript = format_transcript([Turn(t["role"], t["text"]) for t in info["turns"]])
        action = agent.act_id(truncate_transcript(transcript, cap))
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        terminations.append(bool(terminated))
        truncations.append(bool(truncated))
    return buffer_class(
        id=index,
        seed=seed,
        observations=observations,
        actions=actions,
        rewards=rewards,
        terminations=terminations,
        truncations=truncations,
    )


def replay_minari_episode(dataset, episode) -> list[float]:
    """Reset the dataset's env with ``episode``'s seed, send its actions again; the rewards.

    The env is made from the dataset's stored spec only when that spec is one of
    dialog-bench's registered ids with its registered entry point (a stored spec is a
    file's word: Gymnasium would import whatever module it names); its seed must be an
    integer. Anything else is a one-line ``ValueError``.
    """
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids the stored spec names)
    from dialog_env.registration import check_env_id

    where = "the Minari dataset's env spec"
    spec = dataset.env_spec
    env_id = check_env_id(getattr(spec, "id", None), where)
    if spec.entry_point != gym.spec(env_id).entry_point or not isinstance(spec.kwargs, dict):
        raise ValueError(f"{where}: {env_id} must have its registered entry point and kwargs")
    (meta,) = list(dataset.storage.get_episode_metadata([episode.id]))
    seed = meta.get("seed") if isinstance(meta, dict) else None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"the Minari episode {episode.id}'s metadata has no integer seed")
    env = gym.make(env_id, **spec.kwargs)
    try:
        env.reset(seed=int(seed))
        return [float(env.step(int(a))[1]) for a in episode.actions]
    finally:
        env.close()


def _version() -> str:
    from dialog_env import __version__

    return __version__
