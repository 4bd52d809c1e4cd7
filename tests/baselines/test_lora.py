"""LoRA (``--lora RANK``): adapters only train, save as safetensors with the base's hash,
and ``load_agent`` plays them as the in-memory model did; a different base is refused."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("peft")

import torch  # noqa: E402

from agents import load_agent  # noqa: E402
from agents.lm_agent import LMAgent  # noqa: E402
from agents.lora import (  # noqa: E402
    add_lora,
    base_reference,
    count_parameters,
    save_lora,
    shipped_bases,
)
from baselines.common.policy import VALUE_HEAD, TokenPolicy  # noqa: E402
from baselines.demos import generate_demos, write_demos  # noqa: E402
from baselines.sft import SFTConfig, train_sft  # noqa: E402
from dialog_env.lm import TINY_MODEL_DIR  # noqa: E402
from dialog_env.lm.loading import load_causal_lm  # noqa: E402
from dialog_env.lm.model_files import directory_sha256  # noqa: E402

OBSERVATIONS = [
    "user: I want italian food in the north.",
    "user: hello\nassistant: [search] food=thai\ntool: no venue matches",
    "user: Can I have the phone number of The Amber Kitchen?",
]


@pytest.fixture(scope="module")
def lora_sft(tmp_path_factory, one_torch_thread):
    records, meta = generate_demos(
        "expert", range(40), batch_size=8, progress=False, user_model="template"
    )
    demos = tmp_path_factory.mktemp("demos") / "expert.jsonl"
    write_demos(demos, records, meta, "test")
    config = SFTConfig(
        demos=[demos],
        steps=4,
        batch_size=2,
        warmup=1,
        eval_every=4,
        eval_episodes=2,
        heldout=4,
        out=tmp_path_factory.mktemp("ckpt") / "sft-lora",
        logdir=tmp_path_factory.mktemp("runs"),
        progress=False,
        lora=4,
    )
    return train_sft(config)


def _perturbed_lora(seed: int = 0):
    """The tiny LM with rank-4 adapters whose B matrices are random (not the zero init),
    so that the adapted model writes other messages than the base."""
    model = add_lora(copy.deepcopy(load_causal_lm(TINY_MODEL_DIR).model), rank=4)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05)
    return model.eval()


def _save(tmp_path: Path, model) -> Path:
    out = tmp_path / "lora-agent"
    save_lora(out, model)
    config = {"agent": "lm", "paradigm": "sft", "interface": "text"}
    (out / "config.json").write_text(json.dumps(config | base_reference(TINY_MODEL_DIR)))
    return out


def test_sft_with_lora_trains_only_the_adapters(lora_sft):
    manifest = json.loads((lora_sft / "manifest.json").read_text())
    _, total = count_parameters(load_causal_lm(TINY_MODEL_DIR).model)
    assert 0 < manifest["trainable_parameters"] < total / 20
    assert manifest["config"]["lora"] == 4 and manifest["train_tokens_per_s"] > 0
    adapter = lora_sft / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "adapter_config.json").is_file()
    assert not (lora_sft / "lm").exists()  # no copy of the base
    assert not [p for p in lora_sft.rglob("*") if p.suffix in (".bin", ".pt", ".pkl")]
    config = json.loads((lora_sft / "config.json").read_text())
    assert config["base_model"] == "tiny"
    assert config["base_sha256"] == directory_sha256(TINY_MODEL_DIR)


def test_a_lora_sft_checkpoint_loads_as_an_agent_unlike_its_base(lora_sft):
    agent = load_agent(lora_sft)
    base = load_causal_lm(TINY_MODEL_DIR).model
    merged = dict(agent.model.named_parameters())
    changed = [n for n, p in base.named_parameters() if not torch.equal(p, merged[n])]
    # the adapters merged into the block linears, the slot-value rows into the embeddings
    assert any("query_key_value" in n for n in changed)
    assert any("embed_in" in n for n in changed)
    assert all(isinstance(m, str) for m in agent.act_batch(OBSERVATIONS))


def test_only_adapter_parameters_are_trainable():
    model = _perturbed_lora()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert count_parameters(model)[0] == sum(
        p.numel() for n, p in model.named_parameters() if "lora_" in n
    )


def test_load_agent_round_trip_gives_the_in_memory_models_messages(tmp_path):
    model = _perturbed_lora()
    lm = load_causal_lm(TINY_MODEL_DIR)
    in_memory = LMAgent(model, lm.tokenizer).act_batch(OBSERVATIONS)
    loaded = load_agent(_save(tmp_path, model)).act_batch(OBSERVATIONS)
    assert loaded == in_memory
    assert in_memory != LMAgent(lm.model, lm.tokenizer).act_batch(OBSERVATIONS)


def test_an_adapter_on_another_base_is_refused(tmp_path):
    out = _save(tmp_path, _perturbed_lora())
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(config | {"base_sha256": "0" * 64}))
    with pytest.raises(ValueError, match="sha256"):
        load_agent(out)
    other = shutil.copytree(TINY_MODEL_DIR, tmp_path / "other-base")
    (other / "generation_config.json").write_text("{}")  # any change changes the hash
    inner = shutil.copytree(other, out / "base")  # a base that travels with the checkpoint
    (out / "config.json").write_text(json.dumps(config | {"base_model": "base"}))
    with pytest.raises(ValueError, match="refusing to apply an adapter"):
        load_agent(out)
    shutil.rmtree(inner)


@pytest.mark.parametrize("where", ["other-base", "missing", "../other-base", "~/x", "/etc"])
def test_a_base_outside_the_checkpoint_is_refused_alike_whether_it_exists(tmp_path, where):
    out = _save(tmp_path, _perturbed_lora())
    shutil.copytree(TINY_MODEL_DIR, tmp_path / "other-base")
    config = json.loads((out / "config.json").read_text())
    name = str(tmp_path / where) if where in ("other-base", "missing") else where
    (out / "config.json").write_text(json.dumps(config | {"base_model": name}))
    with pytest.raises(ValueError) as refused:
        load_agent(out)
    message = str(refused.value).replace(name[:80], "NAME")
    assert message == (
        f"{out / 'config.json'}: base_model 'NAME' names neither a shipped directory "
        f"({', '.join(sorted(shipped_bases()))}) nor a folder inside the checkpoint"
    )


def test_a_pickled_adapter_is_refused_unopened(tmp_path):
    out = _save(tmp_path, _perturbed_lora())
    (out / "adapter" / "adapter_model.bin").write_bytes(b"not opened")
    with pytest.raises(ValueError, match="unpickling"):
        load_agent(out)


def test_a_lora_token_policy_saves_its_adapter_and_value_head(tmp_path):
    policy = TokenPolicy.load(TINY_MODEL_DIR)
    policy.model = add_lora(policy.model, rank=2)
    with torch.no_grad():
        policy.value_head.bias.fill_(0.5)
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.01)
    prompts = [policy.encode(o) for o in OBSERVATIONS]
    values = policy.prompt_values(prompts)
    out = policy.save(tmp_path / "ppo-lora", "rl")
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (
        out / VALUE_HEAD
    ).is_file()
    assert json.loads((out / "config.json").read_text())["base_model"] == "tiny"
    agent = load_agent(out)
    assert agent.interface == "token"
    assert agent.act_batch(OBSERVATIONS) == policy.agent().act_batch(OBSERVATIONS)
    assert values == pytest.approx([0.5] * len(prompts))
