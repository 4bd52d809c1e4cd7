"""Group-relative RL on the chat task: rollouts wait without stepping, the curve records
dev gold, proxy and the KL from the init, and the over-optimization summary and plot read
such curves."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from lm_helpers import needs_lm

import dialog_env  # noqa: F401  (registers the ids)
from agents import load_agent
from agents.checkpoint import check_config
from baselines.grpo import GRPOConfig, main, play_groups, rollout_kl, score_reference
from baselines.grpo import pack_episode as pack
from baselines.overopt import overoptimization_summary, plot_overoptimization
from dialog_env.core import DialogEnv
from dialog_env.lm import TINY_MODEL_DIR


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs with one torch thread."""


@pytest.fixture(scope="module")
def policy():
    from agents.token_policy import TokenPolicy

    policy = TokenPolicy.load(TINY_MODEL_DIR)
    policy.max_new_tokens = 8
    return policy


# -- config ----------------------------------------------------------------------------
def test_each_env_gets_its_own_user_voice_unless_one_is_asked_for():
    booking = gym.make("Dialog-v1", **GRPOConfig().train_env_kwargs())
    chat = gym.make("Dialog-Chat-v1", **GRPOConfig(env_id="Dialog-Chat-v1").train_env_kwargs())
    assert (booking.unwrapped.user_model, chat.unwrapped.user_model) == ("tiny", "template")
    assert booking.unwrapped.split == chat.unwrapped.split == "train"
    asked = GRPOConfig(env_id="Dialog-Chat-v1", user_model="tiny", env_kwargs='{"reward": "gold"}')
    assert asked.train_env_kwargs() == {"split": "train", "reward": "gold", "user_model": "tiny"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"env_id": "Dialog-Acts-v1"}, "env_id must be one of"),
        ({"env_kwargs": "{reward: gold}"}, "not JSON"),
        ({"env_kwargs": '["rm"]'}, "a JSON object"),
        ({"env_kwargs": '{"split": "test"}'}, "may not set split"),
    ],
)
def test_a_config_refuses_envs_it_cannot_train_on(changes, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig(**changes)


def test_an_lm_checkpoint_config_names_only_a_text_env():
    config = {"agent": "lm", "interface": "token", "env_id": "Dialog-Chat-v1"}
    assert check_config(config, "config.json") == config
    with pytest.raises(ValueError, match="env_id must be a registered text-interface env id"):
        check_config({**config, "env_id": "Dialog-Acts-v1"}, "config.json")


# -- rollouts --------------------------------------------------------------------------
@needs_lm
def test_chat_groups_play_one_episode_each_and_finished_ones_are_left_alone(policy, monkeypatch):
    resets = []
    reset_steps = DialogEnv.reset_steps

    def recording(self, *, seed=None, options=None):
        resets.append(seed)
        return (yield from reset_steps(self, seed=seed, options=options))

    monkeypatch.setattr(DialogEnv, "reset_steps", recording)
    envs = gym.make_vec("Dialog-Chat-v1", num_envs=4, split="train")
    episodes = play_groups(envs, policy, [1, 2], 2, torch.Generator().manual_seed(0), 1.5)
    envs.close()
    assert resets == [1, 1, 2, 2]  # no wait reset, no autoreset: no stray episode
    for e in episodes:
        assert [m.ends_episode for m in e.messages] == [False] * (len(e.messages) - 1) + [True]
        # reward="gold": the return is the episode's mean gold score, its own
        assert e.env_return == pytest.approx(e.metrics["mean_gold"])
        assert e.metrics["answered"] + e.metrics["tool_calls"] == len(e.messages)

    # The KL from the init of the init itself: 0, up to the sampler's float error.
    score_reference(policy, [row for e in episodes for row in pack(e.messages)], 4)
    kl = rollout_kl(episodes)
    assert abs(kl["kl/episode"]) < 1e-3 and abs(kl["kl/token"]) < 1e-4


# -- the trainer -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    config = GRPOConfig(
        init="base",
        env_id="Dialog-Chat-v1",
        env_kwargs='{"reward": "gold"}',
        out=tmp_path_factory.mktemp("grpo-chat"),
        iterations=1,
        groups=2,
        group_size=2,
        temperature=1.5,
        max_new_tokens=8,
        minibatch_rows=2,
        lr=0.0,  # the policy stays the init: its KL from the init must come out 0
        eval_every=1,
        eval_episodes=2,
        keep="last",
        logdir=tmp_path_factory.mktemp("runs"),
        progress=False,
    )
    return main(config)


@needs_lm
def test_a_chat_run_records_gold_proxy_and_kl_from_iteration_0(chat_run):
    manifest = json.loads((chat_run / "manifest.json").read_text())
    assert manifest["env_id"] == "Dialog-Chat-v1"
    assert manifest["env_kwargs"] == {"split": "train", "reward": "gold"}
    curve = manifest["curve"]
    assert [p["iteration"] for p in curve] == [0, 1]
    for point in curve:
        assert {"dev_success", "dev_return", "dev_gold", "kl", "kl_token"} <= point.keys()
        assert 0 <= point["dev_gold"] <= 1
        assert point["dev_return"] == pytest.approx(point["dev_gold"])  # reward="gold"
    assert curve[0]["kl"] == curve[0]["kl_token"] == 0.0  # the init itself
    # The last point's KL is measured on a round played by the policy it scored.
    assert manifest["budget"]["kl_probe_env_steps"] >= 4
    assert np.isfinite(curve[1]["kl"]) and abs(curve[1]["kl"]) < 1e-3  # lr 0: not moved
    summary = overoptimization_summary(curve)
    assert summary["peak_kl"] == 0.0 or summary["peak_gold"] > curve[0]["dev_gold"]

    agent = load_agent(chat_run)
    assert json.loads((chat_run / "config.json").read_text())["env_id"] == "Dialog-Chat-v1"
    assert isinstance(agent.act("user: What is the phone number of The Amber Fig?"), str)


# -- over-optimization -----------------------------------------------------------------
def _curve(kls, golds, proxies):
    return [
        {"iteration": 10 * i, "kl": k, "dev_gold": g, "dev_return": p}
        for i, (k, g, p) in enumerate(zip(kls, golds, proxies, strict=True))
    ]


def test_the_summary_finds_the_gold_peak_and_whether_the_proxy_ran_on():
    curve = _curve([0, 2, 6, 12, 20], [0.3, 0.45, 0.5, 0.42, 0.31], [0.3, 0.5, 0.6, 0.7, 0.8])
    curve.insert(2, {"iteration": 15, "dev_return": 0.55})  # no gold: left out
    summary = overoptimization_summary(curve)
    assert summary["peak_iteration"] == 20 and summary["peak_kl"] == 6
    assert (summary["peak_gold"], summary["final_gold"]) == (0.5, 0.31)
    assert summary["gold_drop"] == pytest.approx(0.19)
    assert summary["proxy_rose_after_peak"] and summary["overoptimized"]

    flat_proxy = _curve([0, 2, 6], [0.3, 0.5, 0.4], [0.3, 0.6, 0.5])
    summary = overoptimization_summary(flat_proxy)
    assert summary["gold_drop"] == pytest.approx(0.1) and not summary["overoptimized"]
    rising = overoptimization_summary(_curve([0, 1], [0.2, 0.2], [0.2, 0.4]))
    assert rising["peak_kl"] == 0 and not rising["overoptimized"]  # first of equal peaks


@pytest.mark.parametrize("x", ["sqrt_kl", "kl"])
def test_the_plot_draws_every_run_into_a_png(tmp_path, x):
    runs = {
        "beta=0": _curve([0, 4, 16, -1e-6], [0.3, 0.5, 0.3, 0.3], [0.3, 0.6, 0.9, 0.3]),
        "beta=0.05": _curve([0, 1, 3], [0.3, 0.4, 0.45], [0.3, 0.45, 0.5]),
    }
    path = plot_overoptimization(runs, tmp_path / "plots" / "overopt.png", x=x)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(ValueError, match="x must be one of"):
        plot_overoptimization(runs, tmp_path / "bad.png", x="log_kl")
