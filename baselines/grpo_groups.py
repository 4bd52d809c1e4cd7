"""The groups of ``dialog-bench train grpo`` (:mod:`baselines.grpo`): playing seeded
groups of rollouts, choosing which to train, and their advantages.

A group is ``group_size`` sub-envs of one ``DialogVectorEnv`` reset with one seed, so
they open with the same goal and the same user turn and differ only by what the policy
samples (:func:`play_groups`). A group whose returns (or, ``spread="success"``,
successes) are all equal carries no signal and is not trained
(:func:`untrained_groups`); :func:`collect_groups` plays rounds of fresh seeds until
``groups`` groups can be trained (DAPO's dynamic sampling). The advantage of an episode
comes from the returns of its group (:func:`group_advantages`) and goes to every token
the agent wrote in it (:func:`set_advantages`); with ``credit="turn"`` each message has
its own, from its return-to-go and a baseline per turn index (:func:`turn_advantages`).
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
    "message_advantages",
    "play_groups",
    "returns_to_go",
    "screened_seeds",
    "set_advantages",
    "signal_groups",
    "turn_advantages",
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


def returns_to_go(rewards: Sequence[float]) -> np.ndarray:
    """Each message's return from that message on: ``G_t = r_t + r_{t+1} + ...``,
    undiscounted (each an exact ``math.fsum``, so ``G_0`` is the episode return to the bit).

    >>> returns_to_go([-0.02, -0.02, 0.98]).round(6).tolist()
    [0.94, 0.96, 0.98]
    """
    return np.array([math.fsum(rewards[t:]) for t in range(len(rewards))])


def turn_advantages(
    returns: Sequence[np.ndarray], groups: np.ndarray, kind: str = "grpo", eps: float = 1e-8
) -> list[np.ndarray]:
    """Each message's advantage (``--credit turn``): its return-to-go minus a baseline
    from the other rollouts of its group at the same agent-turn index.

    ``returns[i]`` holds episode ``i``'s returns-to-go, one per agent message
    (:func:`returns_to_go`), ``groups[i]`` its group. A *cell* is (group, turn index
    ``t``): the rollouts of the group that wrote a ``t``-th message. Within a cell,
    :func:`group_advantages` does what it does for whole episodes: ``rloo`` subtracts the
    mean of the cell's other returns-to-go, ``grpo`` normalizes by the cell's mean and
    population std, ``batch`` takes the round as the group (so a cell is the round's
    rollouts at ``t``); a cell of equal returns-to-go gets 0. At ``t = 0`` every rollout
    is in its cell and ``G_0`` is the episode return, so the first message gets exactly
    the episode-credit advantage; the two credits part only later.

    **Indices that only some rollouts reach.** The baseline at ``t`` is taken over the
    rollouts that reach ``t`` (still in conversation, so their states are alike); a
    rollout alone at its index (every other one has ended) has no baseline and gets
    advantage 0: its late messages are not trained. That fallback is the estimator's
    one bias under RLOO: any other leave-one-out baseline comes from other rollouts
    only, so it does not depend on this rollout's actions, and the gradient stays
    unbiased however long each rollout runs (checked exactly, by enumerating every
    group on a toy whose policy decides the length, in
    ``tests/baselines/test_grpo_credit.py``). It is not, then, the bias verl #7244
    describes, which sums per-index-normalized rewards over the rollout's own remaining
    turns, so that the number of baseline terms is set by the rollout's own stopping
    turn; here the baseline is one term, subtracted from a return-to-go, and the
    same toy shows that construction biased where this one is not. (``grpo``'s mean
    and std include the rollout itself, biased as plain GRPO's are.) What the
    per-index baseline does cost is variance: the rollouts still talking at ``t`` are a
    selection, not a sample of the states this rollout could be in at ``t``.
    ``python -m baselines.turn_credit_bias`` measures how often indices are partly
    reached, how many messages are alone, and how the credit of ending and continuing
    messages moves (docs/turn-credit.md).

    **Undiscounted**, as the env's return is: the step cost already prices length,
    a discount would price it twice, and ``G_0`` would no longer be the return.

    **Why a per-index group baseline and not a learned value per message.** A value
    per message needs a critic trained beside the policy (token PPO's value head: a
    second loss, a warm-up before its values mean anything, fit to one iteration's few
    hundred messages), and on this few-M-parameter LM the head shares the little
    capacity the policy has. The group already holds Monte-Carlo returns of the same
    goal from the same first state, for nothing: the critic-free form that the requests
    for per-turn credit in multi-turn trainers ask for (verifiers #170 and #34, verl
    #1658 and #7244).

    >>> g = [returns_to_go(r) for r in ([0.0, 1.0], [0.0, 0.0], [0.5])]
    >>> [a.round(6).tolist() for a in turn_advantages(g, np.zeros(3), "rloo")]
    [[0.75, 1.0], [-0.75, -1.0], [0.0]]
    >>> [a.tolist() for a in turn_advantages(g[1:], np.zeros(2), "rloo")]
    [[-0.5, 0.0], [0.5]]
    """
    if kind not in ADVANTAGES:
        raise ValueError(f"kind must be one of {ADVANTAGES}, got {kind!r}")
    cell_of: dict[tuple[int, int], int] = {}
    cells = np.array(
        [
            cell_of.setdefault((int(g), t), len(cell_of))
            for g, episode in zip(groups, returns, strict=True)
            for t in range(len(episode))
        ],
        dtype=int,
    )
    values = np.concatenate([np.zeros(0), *returns])
    shared = np.bincount(cells, minlength=len(cell_of))[cells] >= 2
    advantages = np.zeros(len(values))
    # "batch" already made the round one group; within a cell it is leave-one-out.
    within = "grpo" if kind == "grpo" else "rloo"
    advantages[shared] = group_advantages(values[shared], cells[shared], within, eps)
    return np.split(advantages, np.cumsum([len(r) for r in returns])[:-1])


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
    the greedy policy fails first (:mod:`baselines.seed_screen`), ``--screen-chunk`` at a
    time; the screen's figures go to ``stats``."""
    candidates = draw_group_seeds(rng, config.groups * config.group_size)
    chosen, found = screen_seeds(
        policy.agent,
        config.env_id,
        config.training_env_kwargs(),
        candidates,
        k,
        chunk=config.screen_chunk,
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


def message_advantages(
    episodes: Sequence[GroupEpisode], config: GRPOConfig, credit: str | None = None
) -> list[np.ndarray]:
    """Each agent message's advantage, per episode of ``episodes`` (whole groups of
    ``group_size``, or one round for ``batch``), by ``credit`` (default
    ``config.credit``): ``"episode"``, the episode's own (:func:`group_advantages`) on
    each of its messages; ``"turn"``, each message's own (:func:`turn_advantages`)."""
    groups = signal_groups(len(episodes), config.group_size, config.advantage)
    if (credit or config.credit) == "turn":
        return turn_advantages(
            [returns_to_go([m.reward for m in e.messages]) for e in episodes],
            groups,
            config.advantage,
            config.adv_eps,
        )
    returns = np.array([e.env_return for e in episodes])
    advantages = group_advantages(returns, groups, config.advantage, config.adv_eps)
    return [np.full(len(e.messages), a) for e, a in zip(episodes, advantages, strict=True)]


def set_advantages(episodes: Sequence[GroupEpisode], config: GRPOConfig) -> None:
    """Give every agent token of ``episodes`` its message's advantage
    (:func:`message_advantages`: with ``credit="episode"`` its episode's); user and tool
    turns are prompt, never trained."""
    for episode, advantages in zip(episodes, message_advantages(episodes, config), strict=True):
        for m, advantage in zip(episode.messages, advantages, strict=True):
            m.advantages = np.full(len(m.tokens), advantage)


def signal_groups(n: int, group_size: int, advantage: str) -> np.ndarray:
    """Per episode, the group its baseline comes from: its seed's group of ``group_size``,
    or (``batch``) the whole round of ``n``."""
    if advantage == "batch":
        return np.zeros(n, dtype=int)
    return np.repeat(np.arange(n // group_size), group_size)
