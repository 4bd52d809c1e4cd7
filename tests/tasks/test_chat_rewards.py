"""The chat env's reward sources as a user selects them: ``reward="rm"`` (the default),
``"rm-ensemble"`` (K proxy reward models, their mean or their worst case) and ``"gold"``."""

from __future__ import annotations

import json
import shutil

import gymnasium as gym
import numpy as np
import pytest

import dialog_env  # noqa: F401  (registers the ids)
from agents.chat_expert import ChatExpertAgent
from dialog_env.tasks.chat.reward_model import SHIPPED_RM_DIR, RewardEnsemble


@pytest.fixture(scope="module")
def proxies(tmp_path_factory):
    """Three proxy RMs: the shipped one and two copies whose normalization moves their
    scores by different shifts and scales (so the members disagree on every reply)."""
    dirs = [str(SHIPPED_RM_DIR)]
    for name, shift, scale in (("b", 0.4, 0.5), ("c", -0.3, 2.0)):
        out = tmp_path_factory.mktemp(name) / "rm"
        shutil.copytree(SHIPPED_RM_DIR, out)
        manifest = json.loads((out / "manifest.json").read_text())
        norm = manifest["normalization"]
        norm["mean"] += shift * norm["std"]
        norm["std"] *= scale
        (out / "manifest.json").write_text(json.dumps(manifest))
        dirs.append(str(out))
    return dirs


def _replies(env_kwargs: dict, seeds=range(4)) -> list[tuple[float, dict, int]]:
    """``(reward, info, requests)`` of every reply of the chat expert and of random
    letters (seeded) on ``seeds``."""
    env = gym.make("Dialog-Chat-v1", **env_kwargs)
    expert, out = ChatExpertAgent(), []
    for seed in seeds:
        for random_letters in (False, True):
            obs, info = env.reset(seed=seed)
            env.action_space.seed(seed)
            done = False
            while not done:
                action = env.action_space.sample() if random_letters else expert.act(obs)
                obs, reward, term, trunc, info = env.step(action)
                done = term or trunc
                if "rm" in info:
                    out.append((reward, info, len(env.unwrapped.task.goal)))
    return out


def test_the_ensembles_worst_case_is_at_most_each_members_score(proxies):
    replies = _replies({"reward": "rm-ensemble", "reward_models": proxies, "ensemble": "worst"})
    assert len(replies) > 10
    for reward, info, requests in replies:
        members = info["rm_ensemble"]["members"]
        assert len(members) == 3 and len(set(members)) == 3  # the members disagree
        assert reward * requests == pytest.approx(min(members))
        assert all(reward * requests <= m + 1e-12 for m in members)
        assert info["rm_ensemble"]["worst"] == min(members)
        assert members[0] == info["rm"]  # the shipped RM is the first member
        assert set(info["reward_terms"]) == {"rm-ensemble"}


def test_the_ensembles_mean_is_the_members_mean_and_lies_between_them(proxies):
    replies = _replies({"reward": "rm-ensemble", "reward_models": proxies}, seeds=range(2))
    for reward, info, requests in replies:
        members = info["rm_ensemble"]["members"]
        assert reward * requests == pytest.approx(np.mean(members))
        assert min(members) <= reward * requests <= max(members)
    assert "mean_rm_ensemble" in replies[-1][1]["metrics"]


def test_the_default_reward_is_the_shipped_rm_and_gold_is_the_judge():
    for (rm_reward, rm_info, n), (gold_reward, gold_info, _) in zip(
        _replies({}, seeds=range(2)), _replies({"reward": "gold"}, seeds=range(2)), strict=True
    ):
        assert rm_reward * n == pytest.approx(rm_info["rm"])
        assert gold_reward * n == pytest.approx(gold_info["gold"]["gold"])
        assert "rm_ensemble" not in rm_info  # the default's info keeps its keys


def test_the_ensemble_loads_its_members_once_each(proxies):
    ensemble = RewardEnsemble.load(proxies, combine="worst")
    again = RewardEnsemble.load(proxies, combine="mean")
    assert all(a is b for a, b in zip(ensemble.members, again.members, strict=True))
    context = [{"role": "user", "text": "What is the phone number of The Amber Fig?"}]
    reply = "Sure! The phone number of The Amber Fig is 01223 764182."
    scores = ensemble.score([context, context], [reply, "xq zzk"])
    assert scores[0] == pytest.approx(ensemble.score_one(context, reply), abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward": "rm-ensemble"}, "reward_models"),
        ({"reward_models": ["x", "y"]}, "reward_models"),
        ({"reward": "rm-ensemble", "reward_models": [str(SHIPPED_RM_DIR)]}, "at least two"),
        ({"reward": "rm-ensemble", "reward_models": str(SHIPPED_RM_DIR)}, "list of reward"),
        ({"ensemble": "median"}, "ensemble must be one of"),
        ({"reward": "proxy"}, "reward must be one of"),
    ],
)
def test_a_wrong_reward_choice_is_a_one_line_error(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        gym.make("Dialog-Chat-v1", **kwargs)


def test_an_ensemble_env_pickles_by_its_members_paths(proxies):
    import pickle

    env = gym.make("Dialog-Chat-v1", reward="rm-ensemble", reward_models=proxies)
    task = pickle.loads(pickle.dumps(env.unwrapped)).task
    assert [str(m.path) for m in task.ensemble.members] == [
        str(SHIPPED_RM_DIR.resolve()),
        *(str(p) for p in proxies[1:]),
    ]
