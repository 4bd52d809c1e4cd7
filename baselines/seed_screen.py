"""Which train seeds a group-RL iteration plays: drawn at random, or screened for failure.

A policy fresh from SFT solves most train episodes greedily, and the leaderboard scores
it greedily. A group of rollouts on a seed that the greedy policy already solves mostly
teaches it to be surer of what it does anyway (and, when sampling adds errors, to add
fewer of them), which no greedy evaluation can see. ``--seeds greedy-fails`` spends one
greedy episode per candidate seed to find the seeds where the policy, as it will be
judged, fails, and trains the groups there: the contrast inside such a group is between
the sampled rollouts that avoid the greedy policy's mistake and those that make it. This
is a curriculum of hard starts (in the spirit of prioritized level replay and of
rejection-sampling methods that keep the prompts a policy gets wrong), drawn afresh
every round from the current policy; the screening episodes are played, not trained on,
and count in the run's env-step budget.

``--screen-chunk N`` plays the candidates N at a time, in draw order, and stops once K of
them have failed: the same K seeds as the whole screen (:func:`pick_failing` keeps the
first K failing in draw order) whenever each candidate's greedy outcome is the whole
screen's, for fewer screen episodes when failures are common. That is observed, not
promised: a narrower batch runs fewer than 16 rows sooner, where the sums move by an ulp
(``dialog_env.lm.sessions.EXACT_ROWS``), so a greedy near-tie could flip
(docs/throughput.md). ``0`` (the default) plays every candidate in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SEED_CHOICES", "greedy_successes", "pick_failing", "screen_seeds", "screen_summary"]

SEED_CHOICES = ("random", "greedy-fails")


def greedy_successes(
    make_agent, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int]
) -> tuple[list[bool], int]:
    """Whether the agent ``make_agent()`` builds succeeds on each seed's train episode of
    ``env_id`` built with ``env_kwargs``, with the env steps it took: played as the
    leaderboard plays an agent (``leaderboard.rollout.play_episodes``, all seeds side by
    side; an LM agent decodes greedily, keeping each episode's KV cache)."""
    from baselines.demos import train_episodes
    from leaderboard.rollout import AgentMessages, play_episodes

    records = play_episodes(
        AgentMessages(make_agent, batch_size=max(2, len(seeds))),
        train_episodes(env_id, seeds, **env_kwargs),
        progress=False,
    )
    return [bool(r["success"]) for r in records], sum(len(r["rewards"]) for r in records)


def pick_failing(candidates: Sequence[int], successes: Sequence[bool], k: int) -> list[int]:
    """``k`` of ``candidates``: those that failed first (in draw order), then, if fewer
    than ``k`` failed, the first of those that succeeded.

    >>> pick_failing([3, 4, 5, 6], [False, True, False, True], 3)
    [3, 5, 4]
    """
    if not 1 <= k <= len(candidates):
        raise ValueError(f"need 1 <= k <= {len(candidates)} candidates, got k={k}")
    failing = [s for s, ok in zip(candidates, successes, strict=True) if not ok]
    solved = [s for s, ok in zip(candidates, successes, strict=True) if ok]
    return (failing + solved)[:k]


def screen_seeds(
    make_agent,
    env_id: str,
    env_kwargs: dict[str, Any],
    candidates: Sequence[int],
    k: int,
    *,
    chunk: int = 0,
) -> tuple[list[int], dict[str, float]]:
    """The ``k`` seeds of :func:`pick_failing` after one greedy episode per candidate
    (:func:`greedy_successes`), and what the screen saw over the candidates it played:
    ``screen/greedy_success``, ``screen/failing_share_kept``, ``screen/env_steps`` and
    ``screen/candidates``.

    ``chunk`` 0 plays every candidate in one batch; ``chunk`` N plays them N at a time in
    draw order and stops once ``k`` have failed, which picks the same seeds whenever each
    candidate's greedy outcome is the same.
    """
    if not 1 <= k <= len(candidates):
        raise ValueError(f"need 1 <= k <= {len(candidates)} candidates, got k={k}")
    if chunk < 0:
        raise ValueError(f"chunk must be >= 0 (0: every candidate at once), got {chunk}")
    size = chunk or len(candidates)
    successes: list[bool] = []
    steps = 0
    for start in range(0, len(candidates), size):
        ok, played_steps = greedy_successes(
            make_agent, env_id, env_kwargs, candidates[start : start + size]
        )
        successes += ok
        steps += played_steps
        if successes.count(False) >= k:
            break
    played = list(candidates[: len(successes)])
    failing = successes.count(False)
    return pick_failing(played, successes, k), {
        "screen/greedy_success": float(np.mean(successes)),
        "screen/failing_share_kept": min(failing, k) / k,
        "screen/env_steps": steps,
        "screen/candidates": len(played),
    }


def screen_summary(screens: Sequence[dict[str, float]]) -> dict[str, float]:
    """One iteration's screens (a round each) as one: the rates averaged, the env steps
    and the candidates played summed; ``{}`` for none.

    >>> screen_summary([
    ...     {"screen/greedy_success": 0.5, "screen/failing_share_kept": 1.0,
    ...      "screen/env_steps": 9, "screen/candidates": 4},
    ...     {"screen/greedy_success": 0.7, "screen/failing_share_kept": 0.5,
    ...      "screen/env_steps": 8, "screen/candidates": 2},
    ... ])  # doctest: +NORMALIZE_WHITESPACE
    {'screen/greedy_success': 0.6, 'screen/failing_share_kept': 0.75, 'screen/env_steps': 17,
     'screen/candidates': 6}
    >>> screen_summary([])
    {}
    """
    if not screens:
        return {}
    rates = ("screen/greedy_success", "screen/failing_share_kept")
    counts = ("screen/env_steps", "screen/candidates")
    return {name: float(np.mean([s[name] for s in screens])) for name in rates} | {
        name: sum(s[name] for s in screens) for name in counts
    }
