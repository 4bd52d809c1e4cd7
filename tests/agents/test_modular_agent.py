"""The modular pipeline (issue 31): an SB3 policy whose tracker reads the user with the
shipped slot tagger, trained on ``Dialog-Acts-v1`` with ``nlu="tagger"``, labelled
``modular`` and tied to the tagger it was trained with."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import REPO_ROOT

from agents import load_agent
from agents.sb3_agent import tagger_sha256
from baselines.sb3_train import SB3Config, train_sb3
from baselines.train import rebuild_differences
from dialog_env.lm.model_files import directory_sha256
from dialog_env.tasks.booking.parser import parse_user
from dialog_env.tasks.booking.tagger import SHIPPED_TAGGER_DIR, SlotTagger

pytestmark = pytest.mark.skipif(
    not (SHIPPED_TAGGER_DIR / "model.safetensors").is_file(), reason="no shipped tagger"
)
SB3 = REPO_ROOT / "baselines" / "checkpoints" / "sb3-ppo"
OBSERVATION = "user: I want thai food in the north.\nassistant: Which price range?\nuser: cheap"


def _modular(tmp_path, **fields):
    directory = tmp_path / "modular"
    shutil.copytree(SB3, directory)
    config = json.loads((directory / "config.json").read_text())
    config |= {"paradigm": "modular", "nlu": "tagger", "nlu_sha256": tagger_sha256()} | fields
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_a_modular_checkpoint_reads_with_the_tagger_and_hashes_it(tmp_path, monkeypatch):
    read = []
    monkeypatch.setattr(SlotTagger, "read", lambda self, text: read.append(text) or ())
    agent = load_agent(_modular(tmp_path))
    assert (agent.paradigm, agent.interface, agent.nlu) == ("modular", "act", "tagger")
    assert agent.model_sha256 not in (None, directory_sha256(tmp_path / "modular"))
    agent.act(OBSERVATION)
    assert read == ["I want thai food in the north.", "cheap"]
    assert load_agent(SB3).paradigm == "rl"  # the same weights without the tagger


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"nlu": "rule"}, r"paradigm 'modular' with nlu 'rule'"),
        ({"paradigm": "rl"}, r"paradigm 'rl' with nlu 'tagger'"),
        ({"nlu_sha256": "ab" * 32}, r"another slot tagger than the shipped one"),
        ({"nlu": "bert"}, r"nlu must be one of rule, tagger"),
    ],
)
def test_a_modular_config_that_does_not_fit_its_tagger_is_refused(tmp_path, fields, reason):
    with pytest.raises(ValueError, match=reason) as err:
        load_agent(_modular(tmp_path, **fields))
    assert "\n" not in str(err.value)


def test_train_sb3_nlu_tagger_writes_a_modular_policy(tmp_path, one_torch_thread):
    config = SB3Config(
        nlu="tagger",
        total_steps=64,
        n_envs=2,
        eval_every=64,
        eval_episodes=2,
        out=tmp_path / "modular-ppo",
        logdir=tmp_path / "tb",
    )
    out = train_sb3(config)
    written = json.loads((out / "config.json").read_text())
    assert (written["paradigm"], written["nlu"]) == ("modular", "tagger")
    assert written["nlu_sha256"] == tagger_sha256()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "--nlu tagger" in manifest["command"] and rebuild_differences(manifest) == {}
    agent = load_agent(out)
    assert agent.paradigm == "modular"
    assert agent.read_user("thai food, please.") == parse_user("thai food, please.")
