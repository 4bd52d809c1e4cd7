"""The text, act and state interfaces meet identical episodes and check out with both checkers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import VOICES, run_episode

from agents import load_agent
from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS
from dialog_env.tasks.booking.features import STATE_FEATURES

SEEDS = range(40)


def test_sb3_check_env_on_the_act_interface():
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("Dialog-Acts-v1", observation="state"))


@pytest.mark.parametrize("voice", VOICES)
def test_same_goal_and_opening_under_every_interface(voice):
    for seed in SEEDS:
        openings = {
            str(gym.make(i, user_model=voice).reset(seed=seed)[1]["turns"])
            for i in ("Dialog-v1", "Dialog-Acts-v1", "Dialog-Tokens-v1")
        }
        assert len(openings) == 1


@pytest.mark.parametrize("voice", VOICES)
def test_expert_as_text_and_as_act_ids_plays_identical_episodes(voice):
    text_env = gym.make("Dialog-v1", user_model=voice)
    act_env = gym.make("Dialog-Acts-v1", user_model=voice)
    expert = load_agent("expert")
    for seed in SEEDS:
        messages, text_info, text_return = run_episode(text_env, expert, seed)
        act_ids, act_info, act_return = run_episode(act_env, expert, seed)
        assert all(isinstance(a, int) for a in act_ids) and len(act_ids) == len(messages)
        assert act_info["turns"] == text_info["turns"]
        assert act_return == text_return and act_info["success"] == text_info["success"]
        assert act_info["metrics"] == text_info["metrics"]


@pytest.mark.parametrize("voice", VOICES)
def test_expert_as_token_ids_plays_the_text_episodes(voice):
    text_env = gym.make("Dialog-v1", user_model=voice)
    token_env = gym.make("Dialog-Tokens-v1", user_model=voice)
    expert = load_agent("expert")
    for seed in range(10):
        messages, text_info, text_return = run_episode(text_env, expert, seed)
        tokens, token_info, token_return = run_episode(token_env, expert, seed)
        assert len(tokens) > len(messages)  # one step per token, and one per <|end|>
        assert token_info["turns"] == text_info["turns"]
        assert token_return == pytest.approx(text_return)
        assert token_info["metrics"] == text_info["metrics"]


@pytest.mark.parametrize("action", [-1, 1536, 2**31, np.array([1, 2]), np.int64(-3)])
def test_token_ids_out_of_range_name_the_valid_range(action):
    env = gym.make("Dialog-Tokens-v1", user_model="template")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0 to 1535|single integer"):
        env.step(action)


@pytest.mark.parametrize("action", ["a", 2.0, None, np.array(3.0)])
def test_token_ids_of_the_wrong_type_are_type_errors(action):
    env = gym.make("Dialog-Tokens-v1", user_model="template")
    env.reset(seed=0)
    with pytest.raises(TypeError, match="integer"):
        env.step(action)


def test_token_observation_is_left_padded_and_masked():
    env = gym.make("Dialog-Tokens-v1", user_model="template")
    obs, _ = env.reset(seed=0)
    ids, mask = obs["input_ids"], obs["attention_mask"]
    n = int(mask.sum())
    assert mask[-n:].all() and not mask[:-n].any()
    assert env.observation_space.contains(obs)
    token = ids[2]  # a token of the user's opening, not <|end|>: the message grows by one
    obs, reward, *_ = env.step(int(token))
    assert int(obs["attention_mask"].sum()) == n + 1 and reward == 0.0


def test_sb3_check_env_on_the_token_interface():
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("Dialog-Tokens-v1", user_model="template"))


def test_state_vector_tracks_the_conversation():
    env = gym.make("Dialog-Acts-v1")
    obs, _ = env.reset(seed=0)
    names = list(STATE_FEATURES)
    assert obs[names.index("searched_current_query")] == 0
    env.step(ASSISTANT_ACTS.index("ask_constraints"))
    obs, *_ = env.step(ASSISTANT_ACTS.index("search"))
    assert obs[names.index("searched_current_query")] == 1
    assert obs[names.index("last_turn_tool")] == 1
    assert obs[names.index("search_found_some")] + obs[names.index("search_found_none")] == 1
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("action", [-1, 10, 2**31, np.int64(-5), np.array([3, 4])])
def test_act_ids_out_of_range_name_the_valid_range(action):
    env = gym.make("Dialog-Acts-v1")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0 to 9|single integer"):
        env.step(action)


@pytest.mark.parametrize("action", ["search", 1.0, None, True, np.array(1.5)])
def test_act_ids_of_the_wrong_type_are_type_errors(action):
    env = gym.make("Dialog-Acts-v1")
    env.reset(seed=0)
    with pytest.raises(TypeError, match="integer"):
        env.step(action)


def test_numpy_integer_actions_are_the_same_acts_as_python_ints():
    plain, numpy_ids = (gym.make("Dialog-Acts-v1", user_model="template") for _ in range(2))
    plain.reset(seed=0)
    numpy_ids.reset(seed=0)
    for number, action in ((0, np.int32(0)), (1, np.array(1)), (8, np.array([8]))):
        want = plain.step(number)
        got = numpy_ids.step(action)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:4] == want[1:4] and got[4]["turns"] == want[4]["turns"]
    # ask_constraints, search (its tool result follows), reqmore: three assistant turns
    turns = got[4]["turns"]
    roles = ["user", "assistant", "user", "assistant", "tool", "assistant", "user"]
    assert [t["role"] for t in turns] == roles
    assert turns[3]["text"].startswith("[search] ") and turns[4]["text"].startswith("[result]")
