"""The Gymnasium contract of every registered id, with every available user voice."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys

import gymnasium as gym
import pytest
from conftest import VOICES, run_episode

from agents import load_agent
from dialog_env.testing import check_dialog_env

#: Episodes compared across processes: 100 with the template voice, fewer with the LM's.
CROSS_PROCESS_SEEDS = {"template": range(100), "tiny": range(25)}


@pytest.mark.parametrize("voice", VOICES)
def test_public_checker_passes(env_id, voice):
    # check_env with warnings as errors, same-seed rollouts, pickling mid-episode.
    check_dialog_env(env_id, seeds=(0, 1, 2), user_model=voice)


@pytest.mark.parametrize("voice", VOICES)
def test_same_seed_same_expert_episode(env_id, voice):
    a = gym.make(env_id, user_model=voice)
    b = gym.make(env_id, user_model=voice)
    expert = load_agent("expert")
    for seed in range(10):
        msgs_a, info_a, ret_a = run_episode(a, expert, seed)
        msgs_b, info_b, ret_b = run_episode(b, expert, seed)
        assert msgs_a == msgs_b
        assert info_a["turns"] == info_b["turns"]
        assert info_a["metrics"] == info_b["metrics"] and ret_a == ret_b


def test_seeds_give_different_episodes(env_id):
    env = gym.make(env_id)
    openings = {env.reset(seed=s)[1]["turns"][0]["text"] for s in range(20)}
    assert len(openings) > 10


def test_reset_without_seed_continues_the_stream(env_id):
    env = gym.make(env_id)
    env.reset(seed=3)
    first = [env.reset()[1]["turns"] for _ in range(5)]
    env.reset(seed=3)
    assert [env.reset()[1]["turns"] for _ in range(5)] == first


def test_pickled_fresh_env_plays_the_same(env_id):
    env = gym.make(env_id)
    clone = pickle.loads(pickle.dumps(env))
    expert = load_agent("expert")
    assert run_episode(env, expert, 5)[1]["turns"] == run_episode(clone, expert, 5)[1]["turns"]


_DIGEST_SCRIPT = """
import hashlib, json, sys
import gymnasium as gym, dialog_env
from agents import load_agent
env_id, voice, seeds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
env, expert, h = gym.make(env_id, user_model=voice), load_agent("expert"), hashlib.sha256()
for seed in seeds:
    obs, info = env.reset(seed=seed); expert.reset(seed=seed)
    done = False
    while not done:
        transcript = "\\n".join(f"{t['role']}: {t['text']}" for t in info["turns"])
        obs, r, term, trunc, info = env.step(expert.act(transcript)); done = term or trunc
        h.update(json.dumps([r, info["turns"], info.get("metrics")]).encode())
print(h.hexdigest())
"""


def _digest_in_subprocess(env_id: str, voice: str, hashseed: str, threads: str) -> str:
    env = {
        **os.environ,
        "PYTHONHASHSEED": hashseed,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _DIGEST_SCRIPT,
            env_id,
            voice,
            json.dumps(list(CROSS_PROCESS_SEEDS[voice])),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("voice", VOICES)
def test_identical_transcripts_in_other_processes(voice):
    env_id = "Dialog-v1"  # the other interfaces send the same text: see test_interfaces.py
    here = hashlib.sha256()
    env, expert = gym.make(env_id, user_model=voice), load_agent("expert")
    for seed in CROSS_PROCESS_SEEDS[voice]:
        obs, info = env.reset(seed=seed)
        expert.reset(seed=seed)
        done = False
        while not done:
            obs, r, term, trunc, info = env.step(expert.act(obs))
            done = term or trunc
            here.update(json.dumps([r, info["turns"], info.get("metrics")]).encode())
    one = _digest_in_subprocess(env_id, voice, hashseed="1", threads="1")
    two = _digest_in_subprocess(env_id, voice, hashseed="12345", threads="2")
    assert one == two == here.hexdigest()
