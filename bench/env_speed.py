"""Env steps per second with the template voice, beside CartPole-v1, in one run.

The dialogue env is driven by pre-recorded expert messages, so agent time is excluded;
CartPole is driven by pre-sampled actions. Both run in alternating rounds in this one
process, and the table reports each one's median rate and the ratio.

    python -m bench.env_speed [--episodes 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym

import dialog_env  # noqa: F401  (registers the ids)
from agents import load_agent


def record_expert(env_id: str, seeds: range, **kwargs) -> list[list[str]]:
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


def dialog_rate(env: gym.Env, seeds: range, episodes: list[list[str]]) -> float:
    steps, start = 0, time.perf_counter()
    for seed, messages in zip(seeds, episodes, strict=True):
        env.reset(seed=seed)
        for message in messages:
            env.step(message)
        steps += len(messages) + 1  # resets count as steps, as in CartPole below
    return steps / (time.perf_counter() - start)


def cartpole_rate(n_steps: int, seed: int = 0) -> float:
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)
    actions = [int(env.action_space.sample()) for _ in range(n_steps)]
    env.reset(seed=seed)
    start = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env-id", default="Dialog-v1")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    seeds = range(args.episodes)
    kwargs = {"user_model": "template"}
    episodes = record_expert(args.env_id, seeds, **kwargs)
    env = gym.make(args.env_id, **kwargs)
    dialog, cart = [], []
    for _ in range(args.rounds):
        dialog.append(dialog_rate(env, seeds, episodes))
        cart.append(cartpole_rate(20_000))
    d, c = statistics.median(dialog), statistics.median(cart)
    print(f"{'env':<28}{'steps/s (median of ' + str(args.rounds) + ')':>26}")
    print(f"{args.env_id + ' (template voice)':<28}{d:>26,.0f}")
    print(f"{'CartPole-v1':<28}{c:>26,.0f}")
    print(f"ratio {args.env_id} / CartPole-v1 = {d / c:.3f}  (aim: >= 0.100)")


if __name__ == "__main__":
    main()
