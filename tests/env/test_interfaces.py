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


@pytest.mark.parametrize("voice", VOICES)
def test_act_interface_with_text_and_token_observations_sees_the_text_episode(voice):
    """``Dialog-Acts-v1`` with ``observation="text"`` shows the transcript Dialog-v1 shows,
    and with ``"tokens"`` the ids Dialog-Tokens-v1 shows once a message is sent."""
    text_env = gym.make("Dialog-v1", user_model=voice)
    token_env = gym.make("Dialog-Tokens-v1", user_model=voice)
    as_text = gym.make("Dialog-Acts-v1", observation="text", user_model=voice)
    as_tokens = gym.make("Dialog-Acts-v1", observation="tokens", user_model=voice)
    assert isinstance(as_text.observation_space, gym.spaces.Text)
    assert as_tokens.observation_space == token_env.observation_space
    codec = token_env.get_wrapper_attr("codec")
    expert = load_agent("expert")
    for seed in range(3):
        text_obs, info = text_env.reset(seed=seed)
        token_obs, _ = token_env.reset(seed=seed)
        obs_text, _ = as_text.reset(seed=seed)
        obs_tokens, _ = as_tokens.reset(seed=seed)
        # <s>, the user's opening as <|user|> text<|end|>, then <|assistant|>: left-padded
        (opening,) = info["turns"]
        want = [codec.bos_id, *codec.turn_ids("user", opening["text"])]
        want.append(codec.role_ids["assistant"])
        n = int(obs_tokens["attention_mask"].sum())
        assert obs_tokens["input_ids"][-n:].tolist() == want and obs_text == shown(opening)
        done = False
        while not done:
            assert obs_text == text_obs
            _assert_same_tokens(obs_tokens, token_obs)
            message, act = expert.act(text_obs), expert.act_id(text_obs)
            text_obs, reward, term, trunc, info = text_env.step(message)
            for token in [*codec.message_ids(message), codec.end_id]:
                token_obs, token_reward, *_ = token_env.step(token)
            obs_text, text_reward, *_, text_info = as_text.step(act)
            obs_tokens, tokens_reward, *_, tokens_info = as_tokens.step(act)
            assert reward == text_reward == tokens_reward == pytest.approx(token_reward)
            assert text_info["turns"] == tokens_info["turns"] == info["turns"]
            done = term or trunc
        assert info["success"] and text_info["success"] and tokens_info["success"]
        assert as_text.observation_space.contains(obs_text)
        assert as_tokens.observation_space.contains(obs_tokens)


def shown(turn: dict) -> str:
    return f"{turn['role']}: {turn['text']}"


def _assert_same_tokens(got: dict, want: dict) -> None:
    np.testing.assert_array_equal(got["input_ids"], want["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])
