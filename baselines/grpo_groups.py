"""The groups of ``dialog-bench train grpo`` (:mod:`baselines.grpo`): playing seeded
groups of rollouts, choosing which to train, and their advantages.

A group is ``group_size`` sub-envs of one ``DialogVectorEnv`` reset with one seed, so
they open with the same goal and the same user turn and differ only by what the policy
samples (:func:`play_groups`). A group whose returns (or, ``spread="success"``,
successes) are all equal carries no signal and is not trained
(:func:`untrained_groups`); :func:`collect_groups` plays rounds of fresh seeds until
``groups`` groups can be trained (DAPO's dynamic sampling). The advantage of an episode
comes from the returns of its group (:func:`group_advantages`) and goes to every token
the agent wrote in it (:func:`set_advantages`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baselines.common.rollout import Message
from baselines.grpo_config import ADVANTAGES, GRPOConfig
from baselines.seed_screen import screen_seeds
from dialog_env.lm.sessions import ConversationCache

__all__ = [
    "GroupEpisode",
    "collect_groups",
    "draw_group_seeds",
    "group_advantages",
    "play_groups",
    "screened_seeds",
    "set_advantages",
    "signal_groups",
    "untrained_groups",
    "zero_spread",
]


# -- advantages ------------------------------------------------------------------------
def zero_spread(returns: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per episode: whether every return of its group is the same (no signal).

    >>> zero_spread(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0, 0, 1, 1])).tolist()
    [True, True, False, False]
    """
    returns, groups = np.asarray(returns, dtype=float), np.asarray(groups)
    out = np.zeros(len(returns), dtype=bool)
    for g in np.unique(groups):
        members = groups == g
        out[members] = np.ptp(returns[members]) == 0
    return out


def untrained_groups(episodes, groups: np.ndarray, spread: str = "return") -> np.ndarray:
    """Per episode: whether its group is left out of the update, for lack of a spread in
    its returns (``spread="return"``) or in its successes (``"success"``; a group whose
    returns are all equal has equal successes too, so it is left out under both)."""
    returns = np.array([e.env_return for e in episodes])
    flat = zero_spread(returns, groups)
    if spread == "success":
        flat |= zero_spread(np.array([float(e.success) for e in episodes]), groups)
    return flat


def group_advantages(
    returns: np.ndarray, groups: np.ndarray, kind: str = "grpo", eps: float = 1e-8
) -> np.ndarray:
    """Each episode's advantage from the returns of its group (``groups[i]``: its id).

    ``grpo``: ``(r - mean) / (std + eps)`` over the group (population std; DeepSeekMath,
    TRL). ``rloo``: ``r_i`` minus the mean of the group's other returns (Ahmadian et al.
    2024). ``batch``: ``rloo`` over every episode given, whatever its group (REINFORCE
    with a leave-one-out baseline of the whole round: the signal between seeds, for a
    policy whose rollouts of one seed are copies). Each sums to 0 over a group (``batch``:
    over all); a group of equal returns gets 0 everywhere.

    >>> r, g = np.array([1.0, 0.0, -0.1, -0.1, 0.5, 0.5]), np.array([0, 0, 1, 1, 2, 2])
    >>> group_advantages(r, g, "grpo").round(6).tolist()
    [1.0, -1.0, 0.0, 0.0, 0.0, 0.0]
    >>> group_advantages(np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(4), "rloo").round(6).tolist()
    [1.0, -0.333333, -0.333333, -0.333333]
    """
    if kind not in ADVANTAGES:
        raise ValueError(f"kind must be one of {ADVANTAGES}, got {kind!r}")
    returns, groups = np.asarray(returns, dtype=float), np.asarray(groups)
    if kind == "batch":
        kind, groups = "rloo", np.zeros(len(returns), dtype=int)
    advantages = np.zeros(len(returns))
    for g in np.unique(groups):
        members = groups == g
        r = returns[members]
        if len(r) < 2:
            raise ValueError(f"group {g!r} has {len(r)} episode: a baseline needs >= 2")
        if np.ptp(r) == 0:
            continue
        if kind == "grpo":
            advantages[members] = (r - r.mean()) / (r.std() + eps)
        else:
            advantages[members] = r - (r.sum() - r) / (len(r) - 1)
    return advantages


# -- rollout ---------------------------------------------------------------------------
@dataclass
class GroupEpisode:
    """One played episode: its seed, the agent's messages, return and outcome; its
    ``metrics`` are the env's episode metrics (chat: ``mean_gold``, and ``mean_rm``
    where the env reports RM scores)."""

    seed: int
    messages: list[Message]
    env_return: float
    success: bool
    first_observation: str
    metrics: dict[str, Any] = field(default_factory=dict)


def draw_group_seeds(rng: np.random.Generator, k: int) -> list[int]:
    """``k`` distinct train seeds, all below ``EVAL_SEED_FLOOR`` (never a dev or test one)."""
    from leaderboard.episodes import EVAL_SEED_FLOOR

    seeds: list[int] = []
    while len(seeds) < k:
        seed = int(rng.integers(0, EVAL_SEED_FLOOR))
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def play_groups(
    envs, policy, seeds: Sequence[int], group_size: int, generator, temperature: float = 1.0
) -> list[GroupEpisode]:
    """One episode per sub-env of ``envs`` (``len(seeds) * group_size`` of them), sub-envs
    ``[k * G, (k + 1) * G)`` on ``seeds[k]``; episodes in sub-env order.

    Only the sub-envs whose episode runs are stepped (``envs.step_subenvs``): a finished
    one is left as it is until the next reset, since no message is harmless on every
    task (a chat user leaves after ``patience`` tool calls in a row)."""
    n = len(seeds) * group_size
    if envs.num_envs != n:
        raise ValueError(
            f"{len(seeds)} groups of {group_size} need {n} sub-envs, not {envs.num_envs}"
        )
    episode_seeds = [int(s) for s in seeds for _ in range(group_size)]
    observations, _ = envs.reset(seed=episode_seeds)
    observations = list(observations)
    first = list(observations)
    messages: list[list[Message]] = [[] for _ in range(n)]
    success = [False] * n
    metrics: list[dict[str, Any]] = [{} for _ in range(n)]
    rm_scores: list[list[float]] = [[] for _ in range(n)]
    running = list(range(n))
    # Each episode keeps its KV cache between messages (the weights are fixed during the
    # rollout): a message costs its new turns, not the transcript.
    sessions = ConversationCache(policy.codec.pad_id, max_conversations=max(1, n))
    while running:
        prompts = [policy.encode(observations[i]) for i in running]
        sampled = policy.sample(prompts, running, sessions, generator, temperature=temperature)
        actions = [policy.message_text(t) for t in sampled.tokens]
        results = envs.step_subenvs(running, actions)
        ended = []
        for j, (i, (obs, reward, terminated, truncated, info)) in enumerate(
            zip(running, results, strict=True)
        ):
            done = terminated or truncated
            messages[i].append(
                Message(
                    prompts[j],
                    sampled.tokens[j],
                    np.array(sampled.logprobs[j]),
                    np.array(sampled.entropies[j]),
                    reward,
                    done,
                )
            )
            observations[i] = obs
            if "rm" in info:  # a reply's reward-model score, beside its gold terms
                rm_scores[i].append(float(info["rm"]))
            if done:  # a time-limit truncation ends the episode without success
                success[i] = bool(info.get("success", False))
                metrics[i] = _episode_metrics(info, envs.envs[i], rm_scores[i])
                ended.append(i)
        for i in ended:
            sessions.drop(i)
        running = [i for i in running if i not in ended]
    return [
        GroupEpisode(
            episode_seeds[i],
            messages[i],
            math.fsum(m.reward for m in messages[i]),
            success[i],
            first[i],
            metrics[i],
        )
        for i in range(n)
    ]


def _episode_metrics(info: dict, env, rm_scores: list[float]) -> dict[str, Any]:
    """The env's metrics of an ended episode (read off the env when the time limit cut
    it), with ``mean_rm`` (summed per request, as ``mean_gold`` is) from the replies'
    ``info["rm"]`` when the env reports those but not the mean."""
    metrics = dict(info["metrics"] if "metrics" in info else env.unwrapped.episode_summary()[1])
    if rm_scores and "mean_rm" not in metrics:
        metrics["mean_rm"] = math.fsum(rm_scores) / metrics.get("requests", len(rm_scores))
    return metrics


def screened_seeds(
    rng: np.random.Generator, k: int, *, policy, config: GRPOConfig, stats: list
) -> list[int]:
    """``--seeds greedy-fails``: ``k`` of ``groups * group_size`` candidate seeds, those
    the greedy policy fails first (:mod:`baselines.seed_screen`); the screen's figures go
    to ``stats``."""
    candidates = draw_group_seeds(rng, config.groups * config.group_size)
    chosen, found = screen_seeds(
        policy.agent, config.env_id, config.training_env_kwargs(), candidates, k
    )
    stats.append(found)
    return chosen


def collect_groups(envs, policy, rng, generator, config: GRPOConfig, choose_seeds=None):
    """Play rounds of ``groups`` seeded groups until ``groups`` of them can be trained
    (:func:`untrained_groups`), or ``1 + resample_rounds`` rounds are played (DAPO's
    dynamic sampling: a group of equal returns trains nothing, so its place goes to a
    fresh seed). Each round's seeds are ``choose_seeds(rng, groups)`` (default
    :func:`draw_group_seeds`; or :func:`screened_seeds`).

    Returns every episode played, the episodes to train on (at most ``groups`` groups,
    whole, in play order) and the rounds played.
    """
    K, G = config.groups, config.group_size
    choose_seeds = choose_seeds or draw_group_seeds
    played: list[GroupEpisode] = []
    kept: list[GroupEpisode] = []
    rounds = 0
    while rounds <= config.resample_rounds and len(kept) < K * G:
        episodes = play_groups(envs, policy, choose_seeds(rng, K), G, generator, config.temperature)
        rounds += 1
        played += episodes
        flat = untrained_groups(
            episodes, signal_groups(len(episodes), G, config.advantage), config.spread
        )
        for k in range(K):
            if not flat[k * G] and len(kept) < K * G:
                kept += episodes[k * G : (k + 1) * G]
    return played, kept, rounds


def set_advantages(episodes: Sequence[GroupEpisode], config: GRPOConfig) -> None:
    """Give every agent token of ``episodes`` (whole groups of ``group_size``, or one
    round for ``batch``) its episode's advantage (:func:`group_advantages`); user and tool
    turns are prompt, never trained."""
    returns = np.array([e.env_return for e in episodes])
    groups = signal_groups(len(episodes), config.group_size, config.advantage)
    advantages = group_advantages(returns, groups, config.advantage, config.adv_eps)
    for episode, advantage in zip(episodes, advantages, strict=True):
        for m in episode.messages:
            m.advantages = np.full(len(m.tokens), advantage)


def signal_groups(n: int, group_size: int, advantage: str) -> np.ndarray:
    """Per episode, the group its baseline comes from: its seed's group of ``group_size``,
    or (``batch``) the whole round of ``n``."""
    if advantage == "batch":
        return np.zeros(n, dtype=int)
    return np.repeat(np.arange(n // group_size), group_size)
