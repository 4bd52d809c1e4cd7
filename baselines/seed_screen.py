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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SEED_CHOICES", "greedy_successes", "screen_seeds"]

SEED_CHOICES = ("random", "greedy-fails")


def greedy_successes(envs, make_agent, seeds: Sequence[int]) -> tuple[list[bool], int]:
    """Whether the agent ``make_agent()`` builds succeeds on each seed's episode, one
    sub-env of ``envs`` per seed, all in one batched loop (asked as the leaderboard asks
    it: ``leaderboard.rollout.AgentMessages``; an LM agent decodes greedily, keeping each
    episode's KV cache); with the env steps it took. A finished sub-env is left idle
    until the next reset."""
    from leaderboard.rollout import AgentMessages

    n = len(seeds)
    if n > envs.num_envs:
        raise ValueError(f"{n} seeds but only {envs.num_envs} sub-envs to screen them on")
    source = AgentMessages(make_agent, batch_size=max(2, n))
    indices = list(range(n))
    observations = [obs for obs, _ in envs.reset_subenvs(indices, [int(s) for s in seeds])]
    for i, seed in zip(indices, seeds, strict=True):
        source.start(i, int(seed))
    success = [False] * n
    running, steps = indices, 0
    while running:
        actions = source.messages([(i, observations[i]) for i in running])
        results = envs.step_subenvs(running, actions)
        steps += len(running)
        ended = []
        for i, (obs, _reward, terminated, truncated, info) in zip(running, results, strict=True):
            observations[i] = obs
            if terminated or truncated:
                success[i] = bool(info.get("success", False))
                source.finish(i)
                ended.append(i)
        running = [i for i in running if i not in ended]
    return success, steps


def screen_seeds(envs, make_agent, candidates: Sequence[int], k: int) -> tuple[list[int], dict]:
    """``k`` of ``candidates``: those the agent of ``make_agent()`` fails first (in draw
    order), then, if fewer than ``k`` fail, the first of those it solves. Returns the
    seeds and what the screen saw (``screen/greedy_success``,
    ``screen/failing_share_kept``, ``screen/env_steps``).

    >>> class Stub:  # says hi; the stub env fails odd seeds
    ...     def reset(self, seed=None): pass
    ...     def act(self, obs): return "hi"
    >>> class Envs:
    ...     num_envs = 4
    ...     def reset_subenvs(self, idx, seeds): self.seeds = seeds; return [("", {})] * len(idx)
    ...     def step_subenvs(self, idx, actions):
    ...         return [("", 0.0, True, False, {"success": self.seeds[i] % 2 == 0}) for i in idx]
    >>> screen_seeds(Envs(), Stub, [3, 4, 5, 6], 3)[0]
    [3, 5, 4]
    """
    if not 1 <= k <= len(candidates):
        raise ValueError(f"need 1 <= k <= {len(candidates)} candidates, got k={k}")
    success, steps = greedy_successes(envs, make_agent, candidates)
    failing = [s for s, ok in zip(candidates, success, strict=True) if not ok]
    solved = [s for s, ok in zip(candidates, success, strict=True) if ok]
    chosen = (failing + solved)[:k]
    return chosen, {
        "screen/greedy_success": float(np.mean(success)),
        "screen/failing_share_kept": min(len(failing), k) / k,
        "screen/env_steps": steps,
    }
