"""``dialog-bench play``: watch an agent, or be the agent, in one episode.

Every registered id plays through its own interface: on a text id the agent (or you)
writes messages; on ``Dialog-Acts-v1`` an act agent (``sb3-ppo``, ``expert``) picks act
ids and you type act names; on ``Dialog-Tokens-v1`` a token agent (``ppo-base``) sends
its message token by token and what you type is sent as its tokens. An agent that cannot
play the id (another task, another interface) is refused in one line before anything
is loaded into the env. On the chat task each reply is followed by what scored it: the
hidden gold judge's terms and the reward model's score (the agent never sees them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["TOOL_SYNTAX", "add_parser", "check_playable", "main", "play_episode"]

PROMPT = "      you> "
ACT_PROMPT = "      act> "

#: task -> the tool calls shown to a person playing the assistant, before the first prompt.
TOOL_SYNTAX = {
    "booking": (
        "[search] food=italian area=north price=cheap",
        '[book] name="The Golden Fox" people=4 day=friday time=19:00',
    ),
    "chat": ("[search] area=north food=thai", '[search] name="The Amber Fig"'),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="play one episode: watch an agent, or chat as the assistant yourself",
        description="Play one episode of a dialog-bench env. Without --agent you are the "
        "assistant: type messages (or tool calls such as '[search] food=thai'; on "
        "Dialog-Acts-v1, act names) at the prompt; an empty line or Ctrl-D leaves.",
    )
    p.add_argument("--agent", default=None, help="agent name or checkpoint dir (default: you)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default: 0)")
    p.add_argument(
        "--env-id",
        default=None,
        help="registered env id (default: the agent's own: a checkpoint's env_id, else Dialog-v1)",
    )
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.set_defaults(func=main)


def check_playable(agent: Any, agent_spec: str | None, env_id: str) -> str:
    """The interface ``agent`` plays ``env_id`` through (``"text"``, ``"act"``,
    ``"token"``), or a one-line ``ValueError`` saying why it cannot (an unknown id,
    another task, an interface the agent does not have). ``agent`` None: a person."""
    from dialog_env.registration import ALIASES, ENV_IDS, task_of

    task = task_of(env_id)  # one line for an unknown id
    interface = ENV_IDS[ALIASES.get(env_id, env_id)].get("interface", "text")
    if agent is None:
        return interface
    name = getattr(agent, "name", agent_spec)
    if agent_spec is not None and not str(agent_spec).startswith("hf:"):
        from agents import agent_tasks

        tasks = agent_tasks(agent_spec)
        if task not in tasks:
            raise ValueError(
                f"agent {name!r} plays the {'/'.join(tasks)} task, not {env_id} ({task}): "
                "leave out --env-id to play its own"
            )
    if interface == "act" and not hasattr(agent, "act_id"):
        raise ValueError(
            f"agent {name!r} writes messages and {env_id} takes act ids: play it on a text "
            "id, or play an act agent (sb3-ppo, expert) here"
        )
    if interface == "token" and getattr(agent, "interface", "text") != "token":
        raise ValueError(
            f"agent {name!r} is not a token agent and {env_id} takes one token a step: play "
            "it on a text id, or play a token agent (ppo-base) here"
        )
    return interface


def play_episode(env, agent, seed: int, out: TextIO | None = None, interface: str = "text") -> dict:
    """Run one episode, printing each turn as it happens (to ``out``, default the
    current ``sys.stdout``); return the final info.

    ``agent`` None: a person types at the prompt (read from ``sys.stdin``).
    ``interface``: how moves reach ``env`` (``"text"`` messages, ``"act"`` act ids of an
    env whose observation is the transcript, ``"token"`` one token a step)."""
    out = out if out is not None else sys.stdout
    obs, info = env.reset(seed=seed)
    if agent is not None:
        agent.reset(seed=seed)
    else:
        _show_instructions(env, interface, out)
    move = _mover(env, agent, interface, out)
    _show(info["turns"], 0, None, agent is None, out)
    shown, episode_return = len(info["turns"]), 0.0
    while True:
        action = move(obs, info)
        if action is None:
            print("(left the conversation)", file=out)
            return info
        obs, reward, terminated, truncated, info = _send(env, action, interface)
        episode_return += reward
        _show(info["turns"], shown, _score_line(info), agent is None, out)
        shown = len(info["turns"])
        if terminated or truncated:
            break
    if "metrics" in info:
        print(f"\nsuccess: {info['success']}   return: {episode_return:.2f}", file=out)
        print("metrics: " + _format_terms(info["metrics"], sep=", "), file=out)
    else:
        print("\n(truncated: the step limit ran out)", file=out)
    return info


def _format_terms(terms: dict, sep: str = " ") -> str:
    return sep.join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in terms.items()
    )


def _score_line(info: dict) -> str | None:
    """What scored a chat reply, shown after it: gold terms and the RM's score."""
    if "gold" not in info:
        return None
    terms = {k: v for k, v in info["gold"].items() if k != "gold"}
    rm = f"; RM {info['rm']:.2f}" if "rm" in info else ""
    return f"{'':>9}  (gold {info['gold']['gold']:.2f}: {_format_terms(terms)}{rm})"


def _show(turns: list[dict], start: int, score: str | None, person: bool, out: TextIO) -> None:
    """Print ``turns[start:]``, the person's own message left out (they just typed it);
    ``score`` goes after the assistant's message."""
    for t in turns[start:]:
        if t["role"] == "assistant":
            if not person:
                print(f"{t['role']:>9}: {t['text']}", file=out, flush=True)
            if score is not None:
                print(score, file=out, flush=True)
                score = None
            continue
        print(f"{t['role']:>9}: {t['text']}", file=out, flush=True)


def _show_instructions(env, interface: str, out: TextIO) -> None:
    """Before the first prompt: how to play the assistant on this id."""
    if interface == "act":
        acts = env.unwrapped.task.assistant_acts
        print(
            "You pick the assistant's acts: type a name or a number (an empty line leaves):",
            file=out,
        )
        print("  " + ", ".join(f"{i} {name}" for i, name in enumerate(acts)), file=out)
        return
    syntax = TOOL_SYNTAX.get(_task_of_env(env), ())
    print("You are the assistant. Tool calls (their result comes back as a tool line):", file=out)
    for line in syntax:
        print(f"  {line}", file=out)
    print("Anything else is said to the user; an empty line leaves.", file=out)


def _task_of_env(env) -> str:
    from dialog_env.registration import task_of

    return task_of(env.spec.id) if env.spec is not None else "booking"


def _transcript(env, info: dict) -> str:
    """The text a text agent reads, from ``info["turns"]`` (the token id's observation is ids)."""
    from dialog_env.text import Turn, format_transcript, truncate_transcript

    text = format_transcript([Turn(t["role"], t["text"]) for t in info["turns"]])
    return truncate_transcript(text, env.unwrapped.max_observation_chars)


def _mover(env, agent, interface: str, out: TextIO) -> Callable[[Any, dict], Any]:
    """``move(obs, info)``: the next action (a message, an act id, or a message's token
    ids), or None when a person leaves."""
    if agent is not None:
        if interface == "act":
            return lambda obs, info: agent.act_id(obs)
        if interface == "token":
            return lambda obs, info: _token_ids(env, agent.act(_transcript(env, info)))
        return lambda obs, info: agent.act(obs)
    if interface == "act":
        return lambda obs, info: _read_act(env.unwrapped.task.assistant_acts, out)

    def typed(obs, info):
        message = _read(PROMPT)
        if message is None:
            return None
        return _token_ids(env, message) if interface == "token" else message

    return typed


def _read(prompt: str) -> str | None:
    try:
        line = input(prompt)
    except EOFError:
        return None
    return line if line.strip() else None


def _read_act(acts: tuple[str, ...], out: TextIO) -> int | None:
    """An act id typed as a name or a number, asked again until it is one."""
    while True:
        typed = _read(ACT_PROMPT)
        if typed is None:
            return None
        typed = typed.strip()
        if typed in acts:
            return acts.index(typed)
        if typed.isdigit() and int(typed) < len(acts):
            return int(typed)
        print(f"unknown act {typed!r}: a name or a number 0-{len(acts) - 1}", file=out)


def _token_ids(env, message: str) -> list[int]:
    """A message as the token id's steps: its tokens, then ``<|end|>`` if it fits."""
    codec = env.get_wrapper_attr("codec")
    cap = env.get_wrapper_attr("max_message_tokens")
    ids = list(codec.message_ids(message))[:cap]
    return ids + [codec.end_id] if len(ids) < cap else ids


def _send(env, action, interface: str) -> tuple:
    """Step ``env`` with one move; a message's tokens are stepped until it is sent."""
    if interface != "token":
        return env.step(action)
    total = 0.0
    for token in action:
        obs, reward, terminated, truncated, info = env.step(token)
        total += reward
        if terminated or truncated or "message" in info:
            break
    return obs, total, terminated, truncated, info


def main(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from agents import load_agent

    env_id = args.env_id or "Dialog-v1"
    check_playable(None, None, env_id)  # an unknown id: one line, before loading an agent
    agent = load_agent(args.agent) if args.agent else None
    interface = check_playable(agent, args.agent, env_id)
    kwargs = {"observation": "text"} if interface == "act" else {}
    env = gym.make(env_id, split=args.split, **kwargs)
    play_episode(env, agent, args.seed, interface=interface)
    return 0
