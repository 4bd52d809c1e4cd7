"""Loading a model directory: safetensors only, no remote code, and refusals that say why."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import gymnasium as gym
import pytest

import dialog_env  # noqa: F401  (registers the ids)
from dialog_env.lm import TINY_MODEL_DIR

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from lm_helpers import save_tiny_llama, word_tokenizer  # noqa: E402

from dialog_env.lm.loading import ModelLoadError, load_causal_lm  # noqa: E402

needs_tiny = pytest.mark.skipif(
    not (TINY_MODEL_DIR / "model.safetensors").exists(), reason="no shipped model"
)


class _TouchOnUnpickle:
    """A pickle payload: unpickling it creates ``path`` (as a malicious file would)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_missing_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="no model directory"):
        load_causal_lm(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="user_model"):
        gym.make("Dialog-v1", user_model=str(tmp_path / "nowhere"))


def test_directory_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_causal_lm(tmp_path)


def test_not_a_causal_lm(tmp_path):
    from safetensors.torch import save_file

    transformers.T5Config(d_model=8, num_layers=1, num_heads=1, d_kv=8, d_ff=8).save_pretrained(
        tmp_path
    )
    save_file({"w": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="not a causal LM"):
        load_causal_lm(tmp_path)


def test_pickle_weights_are_refused_and_never_opened(tmp_path):
    marker = tmp_path / "pwned"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    transformers.LlamaConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        vocab_size=16,
    ).save_pretrained(model_dir)
    payload = pickle.dumps(_TouchOnUnpickle(marker))
    (model_dir / "pytorch_model.bin").write_bytes(payload)
    # The payload is live: unpickling the same payload aimed elsewhere does create a file.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(control)))  # noqa: S301
    assert control.exists() and not marker.exists()

    with pytest.raises(ModelLoadError, match="pickle"):
        load_causal_lm(model_dir)
    with pytest.raises(ValueError, match="pickle"):
        gym.make("Dialog-v1", user_model=str(model_dir))
    assert not marker.exists()


def test_remote_code_is_refused(tmp_path):
    from safetensors.torch import save_file

    config = transformers.LlamaConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        vocab_size=16,
    )
    config.save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    raw["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel"}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    (tmp_path / "evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="custom code"):
        load_causal_lm(tmp_path)
    assert not (tmp_path / "ran").exists()


def test_tokenizer_without_special_tokens_or_chat_template(tmp_path):
    save_tiny_llama(word_tokenizer(["hello", "world"]), tmp_path)
    with pytest.raises(ModelLoadError, match="lacks the special tokens"):
        load_causal_lm(tmp_path)


@needs_tiny
def test_shipped_model_loads_with_plain_transformers_and_is_cached():
    model = transformers.AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR)
    assert sum(p.numel() for p in model.parameters()) <= 4_000_000
    assert model.config.max_position_embeddings >= 512
    assert (TINY_MODEL_DIR / "model.safetensors").stat().st_size <= 8 * 2**20
    assert not list(TINY_MODEL_DIR.glob("*.bin"))
    manifest = json.loads((TINY_MODEL_DIR / "manifest.json").read_text())
    for key in ("command", "seed", "corpus", "steps", "final_loss", "wall_time_s"):
        assert key in manifest
    assert manifest["wall_time_s"] <= 20 * 60
    first = load_causal_lm(TINY_MODEL_DIR)
    assert first.style == "voice" and load_causal_lm(str(TINY_MODEL_DIR)) is first


def test_bad_device_is_a_clear_error():
    with pytest.raises(ValueError, match="device"):
        gym.make("Dialog-v1", user_model="template", device="tpu")
