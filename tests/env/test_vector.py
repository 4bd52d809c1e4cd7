"""The batched vector env plays exactly the single env's episodes; SB3 trains on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import VOICES, format_transcript_dicts

from agents import load_agent
from dialog_env.vector import DialogVectorEnv

N = 6


def _expert_actions(interface: str, expert, obs_list, turns_list):
    if interface == "act":
        return np.array([expert.act_id(format_transcript_dicts(t)) for t in turns_list])
    return [expert.act(o) for o in obs_list]


def _turns_of(infos, i):
    return list(infos["turns"][i])


@pytest.mark.parametrize("voice", VOICES)
@pytest.mark.parametrize("env_id, interface", [("Dialog-v1", "text"), ("Dialog-Acts-v1", "act")])
def test_sub_envs_play_the_single_env_episodes(env_id, interface, voice):
    envs = gym.make_vec(env_id, num_envs=N, user_model=voice)
    assert isinstance(envs, DialogVectorEnv)
    expert = load_agent("expert")
    obs, infos = envs.reset(seed=100)
    turns = [_turns_of(infos, i) for i in range(N)]
    first_episode: list = [None] * N  # sub-env i's first complete episode
    for _ in range(60):
        actions = _expert_actions(interface, expert, list(obs), turns)
        obs, rewards, term, trunc, infos = envs.step(actions)
        for i in range(N):
            turns[i] = _turns_of(infos, i)
            if (term[i] or trunc[i]) and first_episode[i] is None:
                first_episode[i] = (turns[i], infos["metrics"][i])
        if all(e is not None for e in first_episode):
            break
    single = gym.make(env_id, user_model=voice)
    for i in range(N):
        obs1, info1 = single.reset(seed=100 + i)
        done = False
        while not done:
            action = _expert_actions(interface, expert, [obs1], [info1["turns"]])[0]
            obs1, _, t1, tr1, info1 = single.step(action)
            done = t1 or tr1
        assert first_episode[i] == (info1["turns"], info1["metrics"])


def test_next_step_autoreset():
    envs = gym.make_vec("Dialog-v1", num_envs=2, user_model="template")
    envs.reset(seed=7)
    _, rewards, term, _, _ = envs.step(["Goodbye!", "Which area would you like?"])
    assert term.tolist() == [True, False]
    obs, rewards, term, trunc, infos = envs.step(["ignored", "Goodbye!"])
    assert rewards[0] == 0.0 and not term[0] and len(infos["turns"][0]) == 1
    single = gym.make("Dialog-v1", user_model="template")
    single.reset(seed=7)
    assert obs[0] == single.reset()[0]  # the sub-env's own seed stream goes on


def test_stepping_some_sub_envs_leaves_the_others_as_they_were():
    """On chat every tool call counts toward the user's patience: a finished sub-env that
    is not stepped stays finished, where sending it anything would start or end episodes."""
    envs = gym.make_vec("Dialog-Chat-v1", num_envs=2)
    single = gym.make("Dialog-Chat-v1")
    obs, _ = envs.reset(seed=[3, 4])
    assert obs[0] == single.reset(seed=3)[0]
    for _ in range(4):  # patience: the user leaves after the fourth tool call in a row
        (result,) = envs.step_subenvs([0], ["[search]"])
        expected = single.step("[search]")
        assert result[:4] == expected[:4]
    assert result[2] and result[4]["metrics"] == expected[4]["metrics"]
    with pytest.raises(ValueError, match="reset them first"):
        envs.step_subenvs([0], ["hello"])
    (other,) = envs.step_subenvs([1], ["[search]"])  # sub-env 1 had never been stepped
    assert not other[2] and other[0].count("tool: ") == 1
    envs.reset_subenvs([0], [3])
    assert not envs.step_subenvs([0, 1], ["[search]", "[search]"])[0][2]
    envs.close()


def test_a_sub_env_reset_alone_may_be_stepped_alone():
    envs = gym.make_vec("Dialog-v1", num_envs=3, user_model="template")
    with pytest.raises(RuntimeError, match="call reset"):
        envs.step_subenvs([0], ["hello"])
    ((obs, _),) = envs.reset_subenvs([1], [5])
    assert obs == gym.make("Dialog-v1", user_model="template").reset(seed=5)[0]
    assert len(envs.step_subenvs([1], ["hello"])) == 1
    with pytest.raises(RuntimeError, match="call reset"):
        envs.step_subenvs([0, 1], ["hello", "hello"])  # sub-env 0 never was
    with pytest.raises(RuntimeError, match="call reset"):
        envs.step(["hello"] * 3)
    envs.close()


def test_truncation_at_the_spec_limit():
    envs = gym.make_vec("Dialog-v1", num_envs=2, user_model="template", patience=100, max_turns=100)
    envs.reset(seed=0)
    for t in range(50):
        _, _, term, trunc, _ = envs.step(["[search] food=thai"] * 2)
        assert not term.any()
        assert trunc.all() == (t == 49)


@pytest.mark.parametrize(
    "actions, error, message",
    [
        (np.array([0, 1]), ValueError, r"leading dimension of 3, got shape \(2,\)"),
        (np.array([0, 1, 10]), ValueError, "action 10 is out of range: valid actions are 0 to 9"),
        (np.array([0, -1, 2]), ValueError, "action -1 is out of range: valid actions are 0 to 9"),
        (np.array([0.5, 1.0, 2.0]), TypeError, "action must be an integer, got float64"),
        ("search", TypeError, "a sequence or array of 3 actions, got str"),
    ],
)
def test_bad_vector_actions(actions, error, message):
    envs = gym.make_vec("Dialog-Acts-v1", num_envs=3, user_model="template")
    envs.reset(seed=0)
    with pytest.raises(error, match=message):
        envs.step(actions)


def test_step_before_reset_is_an_error():
    envs = DialogVectorEnv(2, user_model="template")
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(["hi", "hi"])


def test_sb3_ppo_trains_on_batched_rollouts_and_round_trips(tmp_path, one_torch_thread):
    from stable_baselines3 import PPO

    from dialog_env.integrations.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("Dialog-Acts-v1", n_envs=8, user_model="template")
    model = PPO("MlpPolicy", venv, n_steps=256, batch_size=256, n_epochs=2, seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(2048)
    assert model.num_timesteps >= 2048
    assert any(
        not np.allclose(b, a.detach())
        for b, a in zip(before, model.policy.parameters(), strict=True)
    )
    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo")
    obs = venv.reset()
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


@pytest.mark.parametrize("algo", ["A2C", "DQN"])
def test_sb3_a2c_and_dqn_learn_on_the_adapter(algo, one_torch_thread):
    import stable_baselines3

    from dialog_env.integrations.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("Dialog-Acts-v1", n_envs=4, user_model="template")
    kwargs = {"learning_starts": 64, "buffer_size": 1000} if algo == "DQN" else {}
    model = getattr(stable_baselines3, algo)("MlpPolicy", venv, seed=0, **kwargs)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(256)
    # A2C collects 5 steps x 4 envs per update, DQN 4 transitions per env step.
    assert model.num_timesteps == {"A2C": 260, "DQN": 256}[algo]
    after = model.policy.state_dict()
    assert any(not np.allclose(before[k], after[k]) for k in before), "nothing was learned"
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (4,) and all(0 <= a < 10 for a in actions)


def test_the_sb3_adapter_moved_to_integrations_and_its_old_import_still_works():
    import dialog_env.integrations.sb3 as new
    import dialog_env.wrappers.sb3 as old

    assert old.make_sb3_vec_env is new.make_sb3_vec_env and old.SB3VecEnv is new.SB3VecEnv


def test_the_sb3_monitor_reports_each_finished_episode_for_ep_rew_mean():
    from stable_baselines3.common.vec_env import VecMonitor

    from dialog_env.integrations.sb3 import SB3VecEnv, make_sb3_vec_env

    venv = make_sb3_vec_env("Dialog-Acts-v1", n_envs=2, user_model="template", monitor=True)
    assert isinstance(venv, VecMonitor) and isinstance(venv.venv, SB3VecEnv)
    venv.reset()
    _, rewards, dones, infos = venv.step(np.array([9, 9]))  # bye: both episodes end
    assert dones.all()
    for reward, info in zip(rewards, infos, strict=True):
        assert info["episode"]["l"] == 1 and info["episode"]["r"] == pytest.approx(reward)


def test_sb3_adapter_reports_terminal_observations():
    from dialog_env.integrations.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("Dialog-Acts-v1", n_envs=2, user_model="template")
    venv.reset()
    bye = 9
    obs, rewards, dones, infos = venv.step(np.array([bye, bye]))
    assert dones.all()
    for info in infos:
        assert info["terminal_observation"].shape == obs[0].shape
        assert info["TimeLimit.truncated"] is False and info["metrics"]["success"] is False
