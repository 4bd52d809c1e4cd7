"""What every trainer shares (``baselines.common``): the one keep-best rule, where runs
write by default, and manifests whose command rebuilds the config they recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from lm_helpers import needs_lm, tiny_ppo_config

from baselines.common.config import config_argv, config_dict
from baselines.common.evaluation import DEV_RULE, HELDOUT_RULE, KeepBest, dev_scores
from baselines.common.run import (
    SHIPPED_INITS,
    copy_checkpoint,
    init_weights_sha256,
    resolve_init,
    shipped_start,
    shipped_with_weights,
)
from baselines.grpo_config import GRPOConfig
from baselines.ppo_config import PPOConfig
from baselines.reward_model import RMConfig
from baselines.sb3_train import SB3Config, checkpoint_dir
from baselines.sft import SFTConfig
from baselines.tagger import TaggerConfig
from baselines.train import parse_train_command, rebuild_differences
from dialog_env.lm import TINY_MODEL_DIR

REPO = REPO_ROOT


# -- the one keep-best rule ------------------------------------------------------------
def point(step: int, success: float, ret: float, **more) -> dict:
    return {"iteration": step, "dev_success": success, "dev_return": ret, **more}


def test_the_rule_ranks_by_the_board_metric_then_return_and_ties_keep_the_earlier():
    keep = KeepBest(step_key="iteration", start_evaluated=True)
    offers = [
        point(0, 0.4, 0.10),
        point(5, 0.4, 0.10),  # an exact tie: the earlier stays
        point(10, 0.4, 0.20),  # same success, better return
        point(15, 0.3, 0.90),  # better return, worse success: success decides
    ]
    kept = [keep.offer(p, lambda p=p: {"weights": p["iteration"]}) for p in offers]
    assert kept == [True, False, True, False]
    assert keep.state == {"weights": 10}
    manifest = keep.manifest()
    assert manifest["keep_rule"] == DEV_RULE == "dev-board-metric-then-return"
    assert (manifest["kept_step"], manifest["kept_score"]) == (10, [0.4, 0.2])
    assert manifest["kept_start"] is False and manifest["curve"] == offers


def test_a_chat_run_is_ranked_by_gold_not_success_and_may_keep_its_start():
    keep = KeepBest(step_key="iteration", start_evaluated=True)
    keep.offer(point(0, 0.0, 0.5, dev_gold=0.30), lambda: "start")
    keep.offer(point(5, 1.0, 0.9, dev_gold=0.25), lambda: "later")  # proxy up, gold down
    assert keep.state == "start"
    assert keep.manifest()["kept_start"] is True and keep.manifest()["kept_score"] == [0.3, 0.5]


def test_the_reward_model_rule_is_pair_accuracy_then_lower_loss():
    keep = KeepBest(rule=HELDOUT_RULE)
    for step, accuracy, loss in ((1, 0.7, 0.6), (2, 0.7, 0.5), (3, 0.6, 0.1), (4, 0.7, 0.5)):
        keep.offer(
            {"step": step, "heldout_pair_accuracy": accuracy, "heldout_loss": loss},
            lambda step=step: step,
        )
    assert keep.manifest()["kept_step"] == 2 and "kept_start" not in keep.manifest()
    with pytest.raises(ValueError, match="rule must be one of"):
        KeepBest(rule="best-loss")


def test_keep_last_keeps_the_latest_evaluation_and_says_so():
    from baselines.common.evaluation import LAST_RULE

    keep = KeepBest(LAST_RULE, step_key="iteration", start_evaluated=True)
    for step, success in ((0, 0.9), (5, 0.1)):
        keep.offer(point(step, success, 0.0), lambda step=step: step)
    assert keep.state == 5 and keep.manifest()["keep_rule"] == "last-evaluation"
    assert keep.manifest()["kept_start"] is False and keep.manifest()["kept_step"] == 5


def test_dev_scores_carry_gold_and_rm_only_where_every_episode_has_them():
    records = [
        {"success": True, "return": 1.0, "metrics": {"mean_gold": 0.5, "mean_rm": 0.1}},
        {"success": False, "return": 0.0, "metrics": {"mean_gold": 0.25}},
    ]
    assert dev_scores(records) == {"success": 0.5, "return": 0.5, "gold": 0.375}


@needs_lm
def test_an_rl_run_whose_start_stays_best_saves_the_start_and_says_so(tmp_path, monkeypatch):
    """Every evaluation scores the same: the tie keeps the start (step 0), whose weights
    the checkpoint then holds although the run trained."""
    from safetensors.torch import load_file

    monkeypatch.setattr(
        "baselines.token_ppo.evaluate_on_dev",
        lambda *args, **kwargs: {"dev_success": 0.5, "dev_return": 0.0},
    )
    out = __import__("baselines.token_ppo").token_ppo.train_ppo(
        tiny_ppo_config(tmp_path, eval_episodes=1, eval_every=1)
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kept_start"] is True and manifest["kept_step"] == 0
    assert [p["iteration"] for p in manifest["curve"]] == [0, 1, 2]
    init = load_file(str(TINY_MODEL_DIR / "model.safetensors"))
    saved = load_file(str(out / "lm" / "model.safetensors"))
    assert all(torch.equal(init[k], saved[k]) for k in init)


# -- default outputs -------------------------------------------------------------------
#: What no command may write into unless told to by an explicit flag.
PACKAGE_PLACES = ("baselines", "dialog_env", "agents", "leaderboard", "docs", "dialog_bench")


def default_outputs() -> dict[str, list[Path]]:
    """Every trainer's default checkpoint and log directories, as it resolves them."""
    from baselines.pretrain import PretrainConfig

    return {
        "sft": [SFTConfig().default_out(), SFTConfig(filter="success").default_out()],
        "ppo": [PPOConfig().default_out(p) for p in ("rl", "sft-rl")],
        "grpo": [
            GRPOConfig().default_out(TINY_MODEL_DIR, "rl"),
            GRPOConfig(env_id="Dialog-Chat-v1").default_out(REPO / "x/sft-chat", "sft-rl"),
        ],
        "sb3": [checkpoint_dir(SB3Config(algo=a)) for a in ("ppo", "a2c", "dqn")]
        + [checkpoint_dir(SB3Config(nlu="tagger"))],
        "rm": [RMConfig().out],
        "tagger": [TaggerConfig().out],
        "pretrain": [Path(PretrainConfig().out)],
        "logs": [
            c().logdir
            for c in (SFTConfig, PPOConfig, GRPOConfig, SB3Config, RMConfig, TaggerConfig)
        ],
    }


@pytest.mark.parametrize("command", sorted(default_outputs()))
def test_no_trainer_writes_into_the_package_by_default(command):
    for path in default_outputs()[command]:
        assert not path.is_absolute() and path.parts[0] == "runs", path
        assert path.parts[1] not in PACKAGE_PLACES, path
        resolved = (REPO / path).resolve()
        assert not any(resolved.is_relative_to(REPO / p) for p in PACKAGE_PLACES), path


def test_a_checkpoint_and_its_tensorboard_folder_never_share_a_directory():
    for config in (PPOConfig(), GRPOConfig()):
        out = config.default_out(*(("rl",) if isinstance(config, PPOConfig) else (".", "rl")))
        assert config.logdir / out.name != out


# -- manifests that rebuild ------------------------------------------------------------
SFT_RUN = SFTConfig(demos=[Path("a.jsonl"), Path("b c.jsonl")], filter="success")


@pytest.mark.parametrize("config", [SFT_RUN, PPOConfig(lora=4), GRPOConfig(env_kwargs='{"a": 1}')])
def test_every_flag_resolved_gives_the_config_back(config):
    trainer = {SFTConfig: "sft", PPOConfig: "ppo", GRPOConfig: "grpo"}[type(config)]
    skip = ("paradigm",) if trainer == "sft" else ()
    import shlex

    command = shlex.join(["dialog-bench", "train", trainer, *config_argv(config, skip)])
    rebuilt = parse_train_command(command)
    assert config_dict(rebuilt) == config_dict(config)


def test_an_init_whose_weights_changed_is_refused():
    good = init_weights_sha256(TINY_MODEL_DIR)
    assert resolve_init("base", good)[2] == good
    with pytest.raises(ValueError, match="not the 000000000000"):
        resolve_init("base", "0" * 64)


@needs_lm
def test_a_fresh_manifest_command_rebuilds_its_config_and_pins_its_start(tmp_path):
    from baselines.token_ppo import train_ppo

    out = train_ppo(tiny_ppo_config(tmp_path, iterations=1))
    manifest = json.loads((out / "manifest.json").read_text())
    assert rebuild_differences(manifest) == {}
    assert f"--init-sha256 {manifest['init_weights_sha256']}" in manifest["command"]
    assert "--target-kl 0.02" in manifest["command"]  # a default, written all the same
    assert manifest["config"]["out"] == str(out)
    # A copy says where it was made: its command names that directory, not the copy's.
    copy = copy_checkpoint(out, tmp_path / "shipped")
    copied = json.loads((copy / "manifest.json").read_text())
    assert copied["copied_from"] == str(out) and rebuild_differences(copied) == {}
    with pytest.raises(ValueError, match="exists"):
        copy_checkpoint(out, copy)


def shipped_manifests() -> list:
    """Every shipped trained checkpoint's manifest, the known failures marked."""
    broken: dict[str, str] = {  # name -> why its command cannot rebuild it
        "sft-chat": "stage 2 of two (issue 27): its start, stage 1 (stage1-manifest.json), "
        "is not shipped; the start's weights hash is recorded",
    }
    paths = sorted(REPO.glob("baselines/checkpoints/*/manifest.json"))
    paths.append(REPO / "dialog_env/assets/chat-rm/manifest.json")
    params = []
    for path in paths:
        manifest = json.loads(path.read_text())
        if not manifest["command"].startswith("dialog-bench train"):
            continue  # bon-chat: no training
        name = path.parent.name
        marks = [pytest.mark.xfail(strict=True, reason=broken[name])] if name in broken else []
        params.append(pytest.param(path, id=name, marks=marks))
    return params


def test_a_start_whose_run_directory_is_gone_is_found_by_its_weights_hash(tmp_path):
    """A manifest records its start's weights hash; where its ``--init`` names a run
    directory that a fresh checkout lacks, the shipped checkpoint with those very weights
    is the start, and no other weights pass for it."""
    sft = shipped_start("sft-chat")
    sha = init_weights_sha256(sft)
    gone = str(tmp_path / "runs" / "ckpt" / "sft-chat-new")
    assert shipped_with_weights(sha) == sft
    assert resolve_init(gone, sha)[0] == sft
    assert shipped_with_weights("0" * 64) is None
    with pytest.raises(ValueError, match="no directory at"):
        resolve_init(gone, "0" * 64)
    with pytest.raises(ValueError, match="no directory at"):
        resolve_init(gone)  # no hash recorded: nothing to find it by


@pytest.mark.parametrize("path", shipped_manifests())
def test_every_shipped_manifest_command_rebuilds_its_config_and_start(path, monkeypatch):
    manifest = json.loads(path.read_text())
    assert rebuild_differences(manifest) == {}
    made_in = manifest["config"]["out"]
    here = path.parent.relative_to(REPO).as_posix()
    assert made_in == here or manifest.get("copied_from") == made_in
    if "init_weights_sha256" in manifest:  # the token trainers name their start
        monkeypatch.chdir(REPO.parent)  # shipped starts resolve from any directory
        assert shipped_start(SHIPPED_INITS["sft"]) is not None
        init = manifest["config"]["init"] or "base"  # SFT: None is the base LM
        resolve_init(init, manifest["init_weights_sha256"])
