"""Misuse raises clearly and corrupts nothing; content is never an error."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialog_env.core import DialogEnv, EpisodeOver

NASTY_MESSAGES = [
    "",
    "   \t\n  ",
    "x" * 100_000,
    "\U0001f600\U0001f680 book me a table \U0001f37d",
    "\u05d0\u05e0\u05d9 \u05e8\u05d5\u05e6\u05d4 \u05de\u05e1\u05e2\u05d3\u05d4",  # Hebrew, RTL
    "\u202eright-to-left override\u202c",
    "\x00\x01\x07\x1b[31mred\x1b[0m",
    "lone \ud800 surrogate \udfff",
    "[book] people=-1 day=never",
    '[book] name="No Such Place" people=4 day=friday time=19:00',
    "[book]",
    "[search]",
    "[search] food=itallian",
    "[search] colour=blue",
    "[fly] to=the moon",
    "[search food=thai",
    "Caf\u00e9 na\u00efve \uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48",
]


def _step_ok(env: gym.Env, message: str):
    obs, reward, terminated, truncated, info = env.step(message)
    assert env.observation_space.contains(obs)
    assert isinstance(reward, float) and np.isfinite(reward)
    return obs, terminated or truncated, info


@pytest.mark.parametrize("message", NASTY_MESSAGES, ids=range(len(NASTY_MESSAGES)))
def test_nasty_messages_are_answered(text_env_id, message):
    env = gym.make(text_env_id)
    env.reset(seed=0)
    obs, done, info = _step_ok(env, message)
    assert info["turns"][-1]["role"] in ("user", "tool")
    assert info["turns"][-1]["text"]  # someone always answers
    assert info["action_truncated"] == (len(message) > 500 and message.startswith("x"))


def test_huge_message_is_capped(text_env_id):
    env = gym.make(text_env_id)
    env.reset(seed=0)
    _, _, info = _step_ok(env, "y" * 100_000)
    said = info["turns"][-2]
    assert said["role"] == "assistant" and len(said["text"]) == 500
    assert info["action_truncated"] is True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(
        st.one_of(
            st.text(max_size=300),
            st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
            st.sampled_from(NASTY_MESSAGES),
            st.builds(
                lambda k, v: f"[{k}] {v}",
                st.sampled_from(["search", "book", "x"]),
                st.text(max_size=60),
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_text_never_raises_and_stays_in_space(messages):
    env = gym.make("Dialog-v1")
    obs, _ = env.reset(seed=len(messages))
    assert env.observation_space.contains(obs)
    for message in messages:
        obs, done, _ = _step_ok(env, message)
        if done:
            obs, _ = env.reset()


@pytest.mark.parametrize("action", [None, 42, 3.5, b"bytes", ["list"], np.array(["x"])])
def test_non_str_action_is_a_type_error_and_changes_nothing(action):
    env = gym.make("Dialog-v1").unwrapped
    obs, _ = env.reset(seed=0)
    with pytest.raises(TypeError, match="str"):
        env.step(action)
    assert env._observation() == obs  # nothing was appended


def test_step_before_reset_raises():
    env = DialogEnv()
    with pytest.raises(ResetNeeded, match="reset"):
        env.step("hello")


def test_step_after_end_raises_and_does_not_resurrect():
    env = DialogEnv()
    env.reset(seed=0)
    obs, _, terminated, _, _ = env.step("Goodbye!")
    assert terminated
    for _ in range(2):
        with pytest.raises(EpisodeOver, match="reset"):
            env.step("Hello again?")
    assert env._observation() == obs
    env.reset(seed=1)
    env.step("Which area would you like?")  # a fresh episode works


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "validation"}, "split"),
        ({"task": "flights"}, "task"),
        ({"user_model": "gpt-9"}, "user_model"),
        ({"interface": "telepathy"}, "interface"),
        ({"render_mode": "rgb_array"}, "render_mode"),
        ({"max_turns": 0}, "max_turns"),
        ({"interface": "act", "observation": "pixels"}, "observation"),
    ],
)
def test_bad_kwargs_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("Dialog-v1", **kwargs)


def test_render_modes():
    env = DialogEnv(render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs + "\n"


def test_render_human_prints_each_turn_once(capsys):
    env = DialogEnv(render_mode="human")
    env.reset(seed=0)
    env.step("Which area would you like?")
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["user", "assistant", "user"]


def test_long_transcripts_are_cut_at_a_turn_boundary():
    env = DialogEnv(max_observation_chars=2000, patience=100, max_turns=100)
    env.reset(seed=0)
    for _ in range(20):
        obs, *_ = env.step("[search] food=thai")
    assert 1000 < len(obs) <= 2000
    assert obs.startswith(("user: ", "assistant: ", "tool: "))


# -- episode end on every interface (issue 11) ---------------------------------------------
def _goodbye(env: gym.Env) -> list:
    """The actions that say goodbye on ``env``'s interface (several steps for tokens)."""
    from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS

    if isinstance(env.action_space, gym.spaces.Text):
        return ["Goodbye!"]
    codec = getattr(_interface_layer(env), "codec", None)
    if codec is None:  # acts
        return [ASSISTANT_ACTS.index("bye")]
    return [*codec.message_ids("Goodbye!"), codec.end_id]


def _interface_layer(env: gym.Env) -> gym.Env:
    from dialog_env.wrappers.base import InterfaceWrapper

    while not isinstance(env, InterfaceWrapper) and hasattr(env, "env"):
        env = env.env
    return env


def _not_ending(env: gym.Env):
    """An action that never ends the conversation by itself."""
    if isinstance(env.action_space, gym.spaces.Text):
        return "[search] food=thai"
    codec = getattr(_interface_layer(env), "codec", None)
    return 1 if codec is None else codec.message_ids("thai")[-1]


@pytest.mark.parametrize("env_id", ["Dialog-v1", "Dialog-Tokens-v1", "Dialog-Acts-v1"])
def test_every_interface_raises_after_termination(env_id):
    """Was: after Dialog-Tokens-v1 terminated, a non-end token returned (0.0, False, False)."""
    env = gym.make(env_id, user_model="template")
    env.reset(seed=0)
    for action in _goodbye(env):
        _, _, terminated, truncated, _ = env.step(action)
    assert terminated and not truncated
    for action in {_not_ending(env), _goodbye(env)[-1]}:
        with pytest.raises(EpisodeOver, match="the conversation has ended; call reset"):
            env.step(action)
    env.reset(seed=1)
    env.step(_not_ending(env))  # a fresh episode works


@pytest.mark.parametrize("env_id", ["Dialog-v1", "Dialog-Tokens-v1", "Dialog-Acts-v1"])
def test_every_interface_raises_after_truncation(env_id):
    """Was: step 51 of Dialog-v1's 50 returned a reward instead of raising."""
    env = gym.make(env_id, user_model="template", patience=1000, max_turns=1000)
    limit = env.spec.max_episode_steps
    env.reset(seed=0)
    action = _not_ending(env)
    for step in range(limit):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated and truncated == (step == limit - 1)
    with pytest.raises(EpisodeOver, match=f"truncated after {limit} steps"):
        env.step(action)
    env.reset(seed=0)
    assert not any(env.step(action)[2:4])  # a reset starts the count again


def test_token_interface_refuses_a_token_before_reset():
    from dialog_env.interfaces import make_env

    env = make_env(interface="token", user_model="template")
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(5)


def test_the_vector_env_still_autoresets_the_token_interface():
    envs = gym.make_vec("Dialog-Tokens-v1", num_envs=2, user_model="template")
    envs.reset(seed=3)
    single = gym.make("Dialog-Tokens-v1", user_model="template")
    single.reset(seed=3)
    ending, other = _goodbye(single), _not_ending(single)
    for token in ending:
        _, _, term, _, _ = envs.step(np.array([token, other]))
    assert term.tolist() == [True, False]
    _, reward, term, trunc, infos = envs.step(np.array([other, other]))  # autoreset, no raise
    assert reward[0] == 0.0 and not term[0] and not trunc[0] and len(infos["turns"][0]) == 1
