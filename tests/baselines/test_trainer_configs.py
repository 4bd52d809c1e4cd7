"""Every trainer's config reaches its command line one way (``baselines.train``): each
field of each config dataclass is set through ``dialog-bench`` to a value other than its
default and arrives in the config the trainer is called with.

The values are made from the fields' types, so a field added later is checked without
editing this file; a field the command line cannot set fails here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from baselines.common.config import field_default as _default
from baselines.common.config import field_type as _type_name
from baselines.grpo_config import GRPOConfig
from baselines.ppo_config import PPOConfig
from baselines.pretrain import PretrainConfig
from baselines.reward_model import RMConfig
from baselines.sb3_train import SB3Config
from baselines.sft import SFTConfig
from baselines.tagger import TaggerConfig
from dialog_bench.cli import main

#: command -> (argv before the flags, its config class, the function it hands the config
#: to, fields derived from others rather than set).
TRAINERS = {
    "sft": (["train", "sft"], SFTConfig, "baselines.sft.train_sft", ("paradigm",)),
    "sb3": (["train", "sb3"], SB3Config, "baselines.sb3_train.train_sb3", ()),
    "ppo": (["train", "ppo"], PPOConfig, "baselines.token_ppo.train_ppo", ()),
    "grpo": (["train", "grpo"], GRPOConfig, "baselines.grpo.main", ()),
    "pretrain": (["pretrain"], PretrainConfig, "baselines.pretrain.train", ()),
    "rm": (["train", "rm"], RMConfig, "baselines.reward_model.train_rm", ()),
    "tagger": (["train", "tagger"], TaggerConfig, "baselines.tagger.train_tagger", ()),
}
#: Values that a config checks (a str field with a closed set of values).
VALID = {
    "advantage": "rloo",
    "kl_estimator": "k3",
    "keep": "last",
    "init": "sft",
    "init_sha256": "ab" * 32,
    "user_model": "template",
    "env_kwargs": '{"reward": "gold"}',
    "train_env_kwargs": '{"venue_names": "shuffled"}',
}


def other_value(field: dataclasses.Field):
    """A value of the field's type other than its default, and how it is typed."""
    default, kind = _default(field), _type_name(field).split(" |")[0]
    flag = "--" + field.name.replace("_", "-")
    if kind == "bool":
        return (not default), [flag if not default else "--no-" + flag[2:]]
    if kind == "str" and field.name in VALID and VALID[field.name] != default:
        return VALID[field.name], [flag, VALID[field.name]]
    if "choices" in field.metadata:
        value = next(c for c in field.metadata["choices"] if c != default)
        return value, [flag, value]
    if kind == "int":
        value = 7 if default is None else default * 3 + 1
    elif kind == "float":
        value = 0.5 if default is None else default * 3 + 1
    elif kind == "Path":
        value = Path(f"some-{field.name}")
    elif kind == "list[Path]":
        value = [Path("a.jsonl"), Path("b.jsonl")]
        return value, [flag, *map(str, value)]
    elif kind == "tuple[int, ...]":
        value = (32, 16, 8)
        return value, [flag, *map(str, value)]
    elif kind == "str":
        value = f"{default}-other"
    else:
        raise AssertionError(f"{field.name}: no test value for type {kind!r}")
    return value, [flag, str(value)]


@pytest.mark.parametrize("command", sorted(TRAINERS))
def test_every_config_field_reaches_the_command_line(command, monkeypatch, tmp_path):
    prefix, config_class, target, derived = TRAINERS[command]
    calls = []
    monkeypatch.setattr("dialog_bench.prepare.require_extra", lambda *a: None)  # wiring only
    monkeypatch.setattr(target, lambda config, **kwargs: calls.append(config) or "out")
    argv, expected = list(prefix), {}
    for field in dataclasses.fields(config_class):
        if field.name in derived:
            continue
        expected[field.name], flags = other_value(field)
        argv += flags
    monkeypatch.chdir(tmp_path)  # demo files of the config's env, which the CLI checks first
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text("")
        meta = {"env_id": expected.get("env_id", "Dialog-v1")}
        (tmp_path / name).with_suffix(".meta.json").write_text(json.dumps(meta))
    assert main(argv) == 0
    (config,) = calls
    assert isinstance(config, config_class)
    got = {name: getattr(config, name) for name in expected}
    assert got == expected


def test_fields_left_out_keep_their_defaults(monkeypatch):
    calls = []
    monkeypatch.setattr("baselines.token_ppo.train_ppo", lambda config: calls.append(config))
    assert main(["train", "ppo"]) == 0
    assert calls == [PPOConfig()]
