"""Checkpoint directories: trainer smoke runs, round trips, and no pickle ever loaded."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

from agents import load_agent
from baselines.sb3_train import SB3Config, train_sb3
from baselines.train import rebuild_differences

OBSERVATIONS = [
    "user: I'm looking for a restaurant in the north.",
    "user: I'm looking for a restaurant in the north.\nassistant: Sure. Could you tell me "
    "what type of food and what price range you would like?\nuser: I'm looking for a "
    "restaurant serving thai food. I don't mind the price range.",
]


#: Per algorithm, a budget whose one evaluation comes after some training: PPO updates
#: after each 1,024-step rollout (256 steps x 4 envs) and DQN learns from step 2,000 on,
#: so an evaluation before that would keep the untrained policy.
BUDGETS = {"ppo": 2048, "a2c": 512, "dqn": 2400}


@pytest.fixture(scope="module", params=sorted(BUDGETS))
def sb3_run(request, tmp_path_factory, one_torch_thread):
    """``(checkpoint dir, the policy's weights when training started)``."""
    import stable_baselines3

    algo_cls = getattr(stable_baselines3, request.param.upper())
    before = {}
    learn = algo_cls.learn

    def recording_learn(self, *args, **kwargs):
        before.update(copy.deepcopy(self.policy.state_dict()))
        return learn(self, *args, **kwargs)

    config = SB3Config(
        algo=request.param,
        total_steps=BUDGETS[request.param],
        n_envs=4,
        eval_every=BUDGETS[request.param],
        eval_episodes=4,
        out=tmp_path_factory.mktemp(request.param),
        logdir=tmp_path_factory.mktemp("runs"),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(algo_cls, "learn", recording_learn)
        out = train_sb3(config)
    return out, before


@pytest.fixture(scope="module")
def sb3_checkpoint(sb3_run):
    return sb3_run[0]


def test_sb3_trainer_writes_a_loadable_checkpoint(sb3_checkpoint):
    names = sorted(p.name for p in sb3_checkpoint.iterdir())
    assert names == ["config.json", "manifest.json", "model.safetensors"]
    manifest = json.loads((sb3_checkpoint / "manifest.json").read_text())
    assert rebuild_differences(manifest) == {}  # its command rebuilds its config
    assert manifest["budget"]["env_steps"] == BUDGETS[manifest["config"]["algo"]]
    assert manifest["command"]
    # One evaluation at the end of the budget, on the leaderboard's dev episodes: its
    # point on the learning curve, kept by the one rule (success, then return).
    (point,) = manifest["curve"]
    assert point["env_steps"] == manifest["budget"]["env_steps"] == manifest["kept_step"]
    assert manifest["kept_score"] == [point["dev_success"], point["dev_return"]]
    assert manifest["keep_rule"] == "dev-board-metric-then-return"
    assert 0 <= point["dev_success"] <= 1
    agent = load_agent(sb3_checkpoint)
    assert agent.paradigm == "rl" and agent.interface == "act"
    again = load_agent(sb3_checkpoint)
    assert [agent.act(o) for o in OBSERVATIONS] == [again.act(o) for o in OBSERVATIONS]


def test_sb3_checkpoint_holds_the_trained_policy_not_its_init(sb3_run):
    """The saved weights are not the ones training started from (same seed, same init):
    a trainer that saved the untrained policy would fail here."""
    from safetensors.torch import load_file

    checkpoint, before = sb3_run
    trained = load_file(str(checkpoint / "model.safetensors"))
    assert trained.keys() == before.keys()
    changed = [k for k in trained if not np.allclose(trained[k], before[k])]
    assert changed, "the checkpoint holds the policy as it was before training"


class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# One list of pickle endings for checkpoints and model directories alike (Keras' and
# Flax's among them), in any case.
@pytest.mark.parametrize(
    "name",
    ["model.zip", "policy.pkl", "weights.pt", "pytorch_model.bin", "tf_model.h5", "X.MSGPACK"],
)
def test_pickle_files_are_refused_unopened(sb3_checkpoint, tmp_path, name):
    planted = tmp_path / "ckpt"
    planted.mkdir()
    for f in sb3_checkpoint.iterdir():
        (planted / f.name).write_bytes(f.read_bytes())
    marker = tmp_path / "pwned"
    (planted / name).write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(ValueError, match="unpickling"):
        load_agent(planted)
    assert not marker.exists()


def test_broken_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        load_agent(tmp_path)
    (tmp_path / "config.json").write_text('{"agent": "oracle"}')
    with pytest.raises(ValueError, match="agent kind"):
        load_agent(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        load_agent(tmp_path)


def test_a_checkpoint_for_another_act_set_is_refused(sb3_checkpoint, tmp_path):
    for f in sb3_checkpoint.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config["assistant_acts"] = config["assistant_acts"][:-1]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="retrain"):
        load_agent(tmp_path)


def test_a_tempered_sb3_agent_samples_the_boltzmann_policy_over_its_q_values(sb3_checkpoint):
    """DQN at temperature T samples pi(a|s) = softmax(Q(s, .)/T); PPO and A2C their own
    distribution with logits / T. Greedy is the argmax; a seed fixes the samples."""
    import numpy as np
    import torch

    from agents.sb3_agent import SB3Agent
    from dialog_env.tasks.booking.features import state_vector
    from dialog_env.tasks.booking.tracker import track

    greedy = SB3Agent.load(sb3_checkpoint)
    hot = SB3Agent.load(sb3_checkpoint, temperature=0.7)
    obs = OBSERVATIONS[1]
    vector = torch.as_tensor(state_vector(track(obs)), dtype=torch.float32)[None]
    with torch.no_grad():
        if hasattr(hot.policy, "q_net"):
            logits = hot.policy.q_net(vector)[0]
        else:
            logits = hot.policy.get_distribution(vector).distribution.logits[0]
    expected = torch.softmax(logits.double() / 0.7, -1).numpy()
    np.testing.assert_allclose(hot.action_probabilities(obs), expected, rtol=1e-12)
    assert greedy.act_id(obs) == int(logits.argmax())

    def draws(agent, seed):
        agent.reset(seed=seed)
        return [agent.act_id(obs) for _ in range(200)]

    assert draws(hot, 3) == draws(hot, 3)
    counts = np.bincount(draws(hot, 4), minlength=len(expected)) / 200
    assert np.abs(counts - expected).max() < 0.12  # 200 draws: within ~3.5 sigma
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        SB3Agent.load(sb3_checkpoint, temperature=-1.0)
    with pytest.raises(ValueError, match="a greedy agent"):
        greedy.action_probabilities(obs)
