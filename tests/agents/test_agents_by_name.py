"""Shipped checkpoints load by name, from any directory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agents import load_agent, shipped_checkpoints
from leaderboard.run import checkpoint_dirs


def test_every_shipped_checkpoint_is_found_by_name():
    shipped = shipped_checkpoints()
    assert {"sft-expert", "sft-noisy", "sb3-ppo", "ppo-base"} <= set(shipped)
    assert list(shipped.values()) == checkpoint_dirs()


def test_a_shipped_checkpoint_loads_by_name_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    agent = load_agent("sft-expert")
    assert (agent.name, agent.paradigm, agent.interface) == ("sft-expert", "sft", "text")


def test_a_directory_of_that_name_wins_over_the_shipped_checkpoint(tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(shipped_checkpoints()["sb3-ppo"], tmp_path / "sft-expert")
    assert load_agent("sft-expert").paradigm == "rl"  # the local copy of sb3-ppo


def test_a_checkpoint_named_by_name_gets_the_card_its_directory_gets(tmp_path, monkeypatch):
    from leaderboard.agent_card import describe_agent

    monkeypatch.chdir(tmp_path)
    directory = shipped_checkpoints()["sb3-a2c"]
    by_name = describe_agent(load_agent("sb3-a2c"), "sb3-a2c")
    assert by_name == describe_agent(load_agent(directory), directory)
    assert by_name.name == "sb3-a2c" and by_name.budget  # the manifest's budget, not none


def test_an_unknown_name_says_what_there_is():
    with pytest.raises(
        ValueError, match=r"unknown agent 'nope'.*shipped checkpoint \(.*sft-expert"
    ):
        load_agent("nope")


def test_play_takes_a_shipped_agent_by_name(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "dialog_bench", "play", "--agent", "sft-expert", "--seed", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,  # a guard against a hang, not a timing test
    )
    assert out.returncode == 0, out.stderr
    assert "assistant" in out.stdout and "success" in out.stdout
