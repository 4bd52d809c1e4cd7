"""``dialog-bench play``: watch an agent play an episode, or be the assistant yourself.

The README's two commands, ``dialog-bench play --agent expert --seed 0`` and
``dialog-bench play``, must show the episode the env plays for that seed: every turn as
it happens, then the success, the return and the metrics.
"""

from __future__ import annotations

import io
import subprocess
import sys

import gymnasium as gym
import pytest
from conftest import REPO_ROOT, run_episode

from agents import load_agent
from dialog_bench.cli import main

REPO = REPO_ROOT
PROMPT = "      you> "
ACT_PROMPT = "      act> "
#: What a person playing the booking assistant reads before the first prompt.
BOOKING_HELP = [
    "You are the assistant. Tool calls (their result comes back as a tool line):",
    "  [search] food=italian area=north price=cheap",
    '  [book] name="The Golden Fox" people=4 day=friday time=19:00',
    "Anything else is said to the user; an empty line leaves.",
]


def reference_episode(seed: int) -> tuple[list[dict], float, dict]:
    """The turns, return and final info of the expert's episode on ``seed``, played here."""
    env = gym.make("Dialog-v1", split="test")  # what `play` makes: the default voice
    _, info, episode_return = run_episode(env, load_agent("expert"), seed)
    return info["turns"], episode_return, info


def shown(turn: dict) -> str:
    return f"{turn['role']:>9}: {turn['text']}"


def ending(episode_return: float, info: dict) -> list[str]:
    metrics = ", ".join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in info["metrics"].items()
    )
    return ["", f"success: {info['success']}   return: {episode_return:.2f}", f"metrics: {metrics}"]


def test_watching_the_expert_shows_every_turn_then_the_score(capsys):
    turns, episode_return, info = reference_episode(0)
    assert info["success"] and any(t["role"] == "tool" for t in turns)
    assert main(["play", "--agent", "expert", "--seed", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [shown(t) for t in turns] + ending(episode_return, info)


def test_playing_the_assistant_from_stdin_gives_the_same_episode(capsys, monkeypatch):
    """Typing the expert's messages plays the expert's episode; what you typed is not
    echoed back, everything else is shown after your prompt."""
    turns, episode_return, info = reference_episode(1)
    typed = [t["text"] for t in turns if t["role"] == "assistant"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(m + "\n" for m in typed)))
    assert main(["play", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count(PROMPT) == len(typed)
    lines = out.replace(PROMPT, "").splitlines()
    assert lines == BOOKING_HELP + [shown(t) for t in turns if t["role"] != "assistant"] + ending(
        episode_return, info
    )


@pytest.mark.parametrize("stdin", ["\n", "   \n", ""], ids=["empty line", "blank", "Ctrl-D"])
def test_an_empty_line_or_end_of_input_leaves_the_conversation(stdin, capsys, monkeypatch):
    turns, _, _ = reference_episode(2)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["play", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    help_text = "".join(line + "\n" for line in BOOKING_HELP)
    assert out == f"{help_text}{shown(turns[0])}\n{PROMPT}(left the conversation)\n"


def test_play_prints_to_the_stdout_of_the_moment(monkeypatch):
    """Not the stdout of when the module was imported (a redirect must catch it)."""
    import contextlib

    turns, _, _ = reference_episode(2)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    with contextlib.redirect_stdout(io.StringIO()) as caught:
        assert main(["play", "--seed", "2"]) == 0
    assert caught.getvalue().startswith(BOOKING_HELP[0])
    assert shown(turns[0]) in caught.getvalue()


def test_play_names_an_unknown_agent(capsys):
    assert main(["play", "--agent", "nobody"]) == 2
    assert "unknown agent 'nobody'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_installed_command_reads_a_piped_conversation():
    """The real process, its stdin a pipe (as `printf ... | dialog-bench play`)."""
    turns, episode_return, info = reference_episode(1)
    typed = "".join(t["text"] + "\n" for t in turns if t["role"] == "assistant")
    proc = subprocess.run(
        [sys.executable, "-m", "dialog_bench", "play", "--seed", "1"],
        input=typed,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.replace(PROMPT, "").splitlines()[-2:] == ending(episode_return, info)[1:]


# -- every id, through the agent's own interface ---------------------------------------------
def act_episode(agent, seed: int) -> tuple[list[int], list[dict], dict]:
    """The act ids ``agent`` picks on ``Dialog-Acts-v1`` (transcript observation), the
    turns and the last info."""
    env = gym.make("Dialog-Acts-v1", split="test", observation="text")
    obs, info = env.reset(seed=seed)
    agent.reset(seed=seed)
    acts, done = [], False
    while not done:
        acts.append(agent.act_id(obs))
        obs, _, terminated, truncated, info = env.step(acts[-1])
        done = terminated or truncated
    return acts, info["turns"], info


def test_an_act_agent_plays_the_act_id_with_its_act_ids(capsys):
    """sb3-ppo was trained on Dialog-Acts-v1: there it picks act ids (it used to crash)."""
    _, turns, info = act_episode(load_agent("sb3-ppo"), 0)
    assert main(["play", "--agent", "sb3-ppo", "--env-id", "Dialog-Acts-v1", "--seed", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[: len(turns)] == [shown(t) for t in turns]
    assert out[len(turns) + 1].startswith(f"success: {info['success']}")


def test_a_person_plays_the_act_id_by_act_names_and_numbers(capsys, monkeypatch):
    acts, turns, info = act_episode(load_agent("expert"), 1)
    from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS

    typed = [ASSISTANT_ACTS[a] if i % 2 else str(a) for i, a in enumerate(acts)]
    stdin = "".join(t + "\n" for t in ["nonsense", *typed])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["play", "--env-id", "Dialog-Acts-v1", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("You pick the assistant's acts")
    assert "0 ask_constraints, 1 search" in out and "unknown act 'nonsense'" in out
    lines = out.replace(ACT_PROMPT, "").splitlines()
    want = [shown(t) for t in turns if t["role"] != "assistant"]
    assert [line for line in lines if line in want] == want
    assert f"success: {info['success']}" in out


def test_a_token_agent_plays_the_token_id_token_by_token(capsys):
    """ppo-base on Dialog-Tokens-v1 sends its messages as tokens: the episode is the one
    it plays on Dialog-v1."""
    assert main(["play", "--agent", "ppo-base", "--seed", "4"]) == 0
    as_text = capsys.readouterr().out
    assert main(["play", "--agent", "ppo-base", "--env-id", "Dialog-Tokens-v1", "--seed", "4"]) == 0
    assert capsys.readouterr().out == as_text


def test_a_person_types_text_on_the_token_id(capsys, monkeypatch):
    turns, episode_return, info = reference_episode(1)
    typed = [t["text"] for t in turns if t["role"] == "assistant"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(m + "\n" for m in typed)))
    assert main(["play", "--env-id", "Dialog-Tokens-v1", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.replace(PROMPT, "").splitlines()
    assert lines[len(BOOKING_HELP) :] == [
        shown(t) for t in turns if t["role"] != "assistant"
    ] + ending(episode_return, info)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--agent", "sft-expert", "--env-id", "Dialog-Acts-v1"], "takes act ids"),
        (["--agent", "expert", "--env-id", "Dialog-Tokens-v1"], "not a token agent"),
        (["--agent", "sft-chat", "--env-id", "Dialog-v1"], "plays the chat task"),
        (["--agent", "expert", "--env-id", "Dialog-Chat-v1"], "plays the booking task"),
        (["--env-id", "Dialog-v9"], "unknown env id 'Dialog-v9'"),
        (["--agent", "expert", "--env-id", "CartPole-v1"], "unknown env id 'CartPole-v1'"),
    ],
)
def test_an_agent_that_cannot_play_the_id_is_refused_in_one_line(argv, says, capsys):
    assert main(["play", *argv, "--seed", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and says in captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("dialog-bench play: error:")


# -- human play: the tool syntax first, and on chat what scored each reply -------------------
def test_a_person_on_chat_sees_the_tool_syntax_and_each_replys_gold_terms_and_rm_score(
    capsys, monkeypatch
):
    typed = ['[search] name="The Merry Bell"', "The Merry Bell is at 1 Mill Road. Anything else?"]
    env = gym.make("Dialog-Chat-v1", split="test")
    env.reset(seed=0)
    for message in typed:
        *_, info = env.step(message)
    gold = info["gold"]
    terms = " ".join(f"{k}={v:.2f}" for k, v in gold.items() if k != "gold")
    score = f"{'':>9}  (gold {gold['gold']:.2f}: {terms}; RM {info['rm']:.2f})"

    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(m + "\n" for m in typed)))
    assert main(["play", "--env-id", "Dialog-Chat-v1", "--seed", "0"]) == 0
    lines = capsys.readouterr().out.replace(PROMPT, "").splitlines()
    assert lines[:4] == [
        "You are the assistant. Tool calls (their result comes back as a tool line):",
        "  [search] area=north food=thai",
        '  [search] name="The Amber Fig"',
        "Anything else is said to the user; an empty line leaves.",
    ]
    tool_line = next(i for i, line in enumerate(lines) if line.startswith("     tool:"))
    assert lines[tool_line + 1] == score  # right after the reply, before the user answers


def test_the_scores_shown_never_reach_the_agent(capsys):
    """What the agent reads is the env's observation, nothing that play prints."""
    from agents import load_agent

    seen = []
    agent = load_agent("chat-expert")
    act = agent.act
    agent.act = lambda obs: seen.append(obs) or act(obs)
    from agents.play import play_episode

    env = gym.make("Dialog-Chat-v1", split="test")
    play_episode(env, agent, 0)
    assert "(gold" in capsys.readouterr().out
    assert seen and not any("gold" in obs or "RM " in obs for obs in seen)
