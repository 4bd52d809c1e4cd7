"""``dialog-bench play``: watch an agent play an episode, or be the assistant yourself.

The README's two commands, ``dialog-bench play --agent expert --seed 0`` and
``dialog-bench play``, must show the episode the env plays for that seed: every turn as
it happens, then the success, the return and the metrics.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import run_episode

from agents import load_agent
from dialog_bench.cli import main

REPO = Path(__file__).resolve().parents[1]
PROMPT = "      you> "


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
    assert lines == [shown(t) for t in turns if t["role"] != "assistant"] + ending(
        episode_return, info
    )


@pytest.mark.parametrize("stdin", ["\n", "   \n", ""], ids=["empty line", "blank", "Ctrl-D"])
def test_an_empty_line_or_end_of_input_leaves_the_conversation(stdin, capsys, monkeypatch):
    turns, _, _ = reference_episode(2)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["play", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out == f"{shown(turns[0])}\n{PROMPT}(left the conversation)\n"


def test_play_prints_to_the_stdout_of_the_moment(monkeypatch):
    """Not the stdout of when the module was imported (a redirect must catch it)."""
    import contextlib

    turns, _, _ = reference_episode(2)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    with contextlib.redirect_stdout(io.StringIO()) as caught:
        assert main(["play", "--seed", "2"]) == 0
    assert caught.getvalue().startswith(shown(turns[0]))


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
