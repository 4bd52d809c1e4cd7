"""``dialog-bench play``: watch an agent, or be the agent, in one episode."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "main", "play_episode"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="play one episode: watch an agent, or chat as the assistant yourself",
        description="Play one episode of a dialog-bench env. Without --agent you are the "
        "assistant: type messages (or tool calls such as '[search] food=thai') at the "
        "prompt; an empty line or Ctrl-D leaves.",
    )
    p.add_argument("--agent", default=None, help="agent name or checkpoint dir (default: you)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default: 0)")
    p.add_argument("--env-id", default="Dialog-v1", help="registered env id")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.set_defaults(func=main)


def play_episode(env, agent, seed: int, out=None) -> dict:
    """Run one episode, printing each turn as it happens (to ``out``, default the
    current ``sys.stdout``); return the final info."""
    out = out if out is not None else sys.stdout
    obs, info = env.reset(seed=seed)
    if agent is not None:
        agent.reset(seed=seed)
    shown, episode_return = 0, 0.0

    def show(turns: list[dict]) -> int:
        for t in turns[shown:]:
            if agent is None and t["role"] == "assistant":
                continue  # the person just typed it
            print(f"{t['role']:>9}: {t['text']}", file=out, flush=True)
        return len(turns)

    shown = show(info["turns"])
    while True:
        if agent is None:
            try:
                message = input("      you> ")
            except EOFError:
                message = ""
            if not message.strip():
                print("(left the conversation)", file=out)
                return info
        else:
            message = agent.act(obs)
        obs, reward, terminated, truncated, info = env.step(message)
        episode_return += reward
        shown = show(info["turns"])
        if terminated or truncated:
            break
    if "metrics" in info:
        print(f"\nsuccess: {info['success']}   return: {episode_return:.2f}", file=out)
        print(
            "metrics: "
            + ", ".join(
                f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                for k, v in info["metrics"].items()
            ),
            file=out,
        )
    else:
        print("\n(truncated: the step limit ran out)", file=out)
    return info


def main(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from agents import load_agent

    agent = load_agent(args.agent) if args.agent else None
    env = gym.make(args.env_id, split=args.split)
    play_episode(env, agent, args.seed)
    return 0
