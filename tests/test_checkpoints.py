"""Checkpoint directories: trainer smoke runs, round trips, and no pickle ever loaded."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from agents import load_agent
from agents.checkpoint import read_config
from baselines.sb3_train import SB3Config, train_sb3

OBSERVATIONS = [
    "user: I'm looking for a restaurant in the north.",
    "user: I'm looking for a restaurant in the north.\nassistant: Sure. Could you tell me "
    "what type of food and what price range you would like?\nuser: I'm looking for a "
    "restaurant serving thai food. I don't mind the price range.",
]


@pytest.fixture(scope="module", params=["ppo", "a2c", "dqn"])
def sb3_checkpoint(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    config = SB3Config(
        algo=request.param,
        total_steps=512,
        n_envs=4,
        eval_every=256,
        eval_episodes=4,
        out=out,
        logdir=tmp_path_factory.mktemp("runs"),
    )
    return train_sb3(config)


def test_sb3_trainer_writes_a_loadable_checkpoint(sb3_checkpoint):
    names = sorted(p.name for p in sb3_checkpoint.iterdir())
    assert names == ["config.json", "manifest.json", "model.safetensors"]
    manifest = json.loads((sb3_checkpoint / "manifest.json").read_text())
    assert manifest["budget"]["env_steps"] >= 512 and manifest["command"]
    agent = load_agent(sb3_checkpoint)
    assert agent.paradigm == "rl" and agent.interface == "act"
    again = load_agent(sb3_checkpoint)
    assert [agent.act(o) for o in OBSERVATIONS] == [again.act(o) for o in OBSERVATIONS]


def test_sb3_training_changes_the_policy(sb3_checkpoint):
    from safetensors.torch import load_file

    from agents.sb3_agent import build_policy

    trained = load_file(str(sb3_checkpoint / "model.safetensors"))
    fresh = build_policy(read_config(sb3_checkpoint)).state_dict()
    assert trained.keys() == fresh.keys()
    assert any(not np.allclose(trained[k], fresh[k]) for k in trained)


class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["model.zip", "policy.pkl", "weights.pt", "pytorch_model.bin"])
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
