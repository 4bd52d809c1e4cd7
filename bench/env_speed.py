"""Env ``step()`` calls per second with the template voice, beside CartPole-v1, in one run.

Both sides run the same loop (:func:`replay`) over episodes recorded beforehand: Dialog-v1's
from the expert's messages, CartPole's from uniformly sampled actions, so no agent runs
in the timed loop. Both envs come from ``gymnasium.make``, so both sit behind the same
wrappers (``TimeLimit``, ``OrderEnforcing``, ``PassiveEnvChecker``), and both reset with
the episode's seed. The rounds alternate the two in this one process; the table reports
each one's median.

The unit is one ``step()`` call on both sides: the rate is ``step()`` calls per second
of the time spent inside ``step()``. Resets are timed apart, reported per reset, and
neither counted nor in the rate, on both sides: how often an env resets is the policy's
doing (the expert ends a conversation in about 4 messages, a random agent runs to the
50-message limit; random actions topple the pole in about 22 steps, a good policy holds
it for 500), so a rate with resets in it would rank the policies as much as the envs.
Add the reset line to get what a training loop pays per episode.

Why an earlier version read 0.092 where ``step()`` calls alone read 0.102: it counted
each Dialog reset as a step but paid for it as about two (a reset samples a goal by
rejection against the venue database, seeds a new generator and voices the user's
opening turn, about twice a step's time per cProfile), once every ~4.3 steps; CartPole's
resets, cheaper than a step and once every ~22, were timed and not counted. The loops
differed too (CartPole's unpacked each step's result and tested for the episode's end);
now they are one function. ::

    python -m bench.env_speed [--episodes 200] [--cartpole-steps 20000] [--rounds 5]
    python -m bench.env_speed --smoke
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

import dialog_env  # noqa: F401  (registers the ids)
from agents import load_agent
from bench import parse_args
from bench.record import BenchRecord, add_out_argument

__all__ = ["main", "record_cartpole", "record_expert", "replay"]


def record_expert(env_id: str, seeds: Sequence[int], **kwargs) -> list[list[str]]:
    """The expert's messages for each seed's episode, to its end."""
    env, expert, episodes = gym.make(env_id, **kwargs), load_agent("expert"), []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        expert.reset(seed=seed)
        messages, done = [], False
        while not done:
            messages.append(expert.act(obs))
            obs, _, term, trunc, _ = env.step(messages[-1])
            done = term or trunc
        episodes.append(messages)
    return episodes


def record_cartpole(n_steps: int) -> tuple[range, list[list[int]]]:
    """Seeds ``0..k-1`` and each one's uniformly sampled actions to the episode's end,
    for the fewest episodes that reach ``n_steps`` steps in all."""
    env, episodes, total = gym.make("CartPole-v1"), [], 0
    while total < n_steps:
        seed = len(episodes)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        actions, done = [], False
        while not done:
            actions.append(int(env.action_space.sample()))
            _, _, term, trunc, _ = env.step(actions[-1])
            done = term or trunc
        episodes.append(actions)
        total += len(actions)
    return range(len(episodes)), episodes


def replay(env: gym.Env, seeds: Sequence[int], episodes: Sequence[Sequence[Any]]):
    """``(step() calls per second of step time, seconds per reset)`` of replaying each
    recorded episode after ``env.reset(seed=seed)``."""
    steps, step_s, reset_s = 0, 0.0, 0.0
    for seed, actions in zip(seeds, episodes, strict=True):
        t0 = time.perf_counter()
        env.reset(seed=seed)
        t1 = time.perf_counter()
        for action in actions:
            env.step(action)
        t2 = time.perf_counter()
        steps += len(actions)
        reset_s += t1 - t0
        step_s += t2 - t1
    return steps / step_s, reset_s / len(episodes)


def parser_share(
    episodes: Sequence[Sequence[str]], steps_per_s: float, rounds: int
) -> tuple[str, float, float]:
    """How much of a step reading the agent's message takes: ``parse_agent`` timed alone
    over the recorded messages that go to the user (a tool call is not parsed), as a share
    of the measured step time. Returns the printed line, that share and the microseconds
    per message parsed."""
    from dialog_env.tasks.booking.parser import get_lexicon, parse_agent
    from dialog_env.tasks.booking.tools import is_tool_call

    lexicon = get_lexicon()
    said = [m for messages in episodes for m in messages if not is_tool_call(m)]
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for message in said:
            parse_agent(message, lexicon)
        best = min(best, (time.perf_counter() - start) / max(1, len(said)))
    share = best * len(said) / sum(map(len, episodes)) * steps_per_s
    line = (
        f"of which parse_agent: {best * 1e6:.1f} us per message to the user "
        f"({len(said)} of {sum(map(len, episodes))} steps), {share:.0%} of the step time"
    )
    return line, share, best * 1e6


SMOKE = {"episodes": 5, "cartpole_steps": 500, "rounds": 1}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env-id", default="Dialog-v1")
    p.add_argument("--episodes", type=int, default=200, help="expert episodes (seeds 0..N-1)")
    p.add_argument("--cartpole-steps", type=int, default=20_000, help="CartPole steps a round")
    p.add_argument("--rounds", type=int, default=5)
    add_out_argument(p)
    args = parse_args(p, argv, SMOKE)
    with BenchRecord("env_speed", argv, args) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Time both sides ``args.rounds`` times, print the table and keep the figures."""
    kwargs = {"user_model": "template"}
    sides = {
        f"{args.env_id} (template voice)": (
            gym.make(args.env_id, **kwargs),
            range(args.episodes),
            record_expert(args.env_id, range(args.episodes), **kwargs),
        ),
        "CartPole-v1": (gym.make("CartPole-v1"), *record_cartpole(args.cartpole_steps)),
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    resets: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, (env, seeds, episodes) in sides.items():
            rate, reset = replay(env, seeds, episodes)
            rates[name].append(rate)
            resets[name].append(reset)
    print(f"step() calls per second of step time, resets apart; median of {args.rounds} round(s)")
    print(f"{'env':<28}{'steps/s':>10}{'us per reset':>14}{'steps per episode':>19}")
    for name, (_, _, episodes) in sides.items():
        per_episode = sum(map(len, episodes)) / len(episodes)
        print(
            f"{name:<28}{statistics.median(rates[name]):>10,.0f}"
            f"{statistics.median(resets[name]) * 1e6:>14,.1f}{per_episode:>19.1f}"
        )
    dialog, cart = (statistics.median(r) for r in rates.values())
    record.figures |= {"dialog_steps_s": dialog, "cartpole_steps_s": cart}
    if args.env_id == "Dialog-v1":
        episodes = sides[f"{args.env_id} (template voice)"][2]
        line, share, us = parser_share(episodes, dialog, args.rounds)
        print(line)
        record.figures |= {"parse_agent_share": share, "parse_agent_us": us}
        # parse_agent's mean time per step, counted in CartPole steps: at the 0.25 aim a
        # whole Dialog step has the time of 4.
        record.figures["parse_agent_cartpole_steps"] = share * cart / dialog
    record.ratio("ratio", f"{args.env_id} / CartPole-v1", dialog / cart, "aim: >= 0.25")


if __name__ == "__main__":
    main()
