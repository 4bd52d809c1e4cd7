"""Helpers of the LM tests: small model directories made on the spot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialog_env.lm import TINY_MODEL_DIR

#: Skips a test where the shipped tiny LM is missing (a checkout without its weights).
needs_lm = pytest.mark.skipif(
    not (TINY_MODEL_DIR / "model.safetensors").exists(), reason="the tiny LM is not shipped yet"
)


def save_tiny_llama(tokenizer, path: Path, layers: int = 1, seed: int = 0) -> Path:
    """A randomly initialized tiny Llama with ``tokenizer``, saved as a model directory."""
    import torch
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def word_tokenizer(words: list[str]):
    """A whitespace word-level tokenizer over ``words`` (``<unk>``, ``<s>``, ``</s>`` first)."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def tiny_ppo_config(directory: Path, **overrides):
    """A token-PPO run of a few messages on the template voice, without dev evaluations,
    writing its checkpoint and logs under ``directory``."""
    from baselines.ppo_config import PPOConfig

    settings = dict(
        init="base",
        out=directory / "ckpt",
        iterations=2,
        num_envs=2,
        messages_per_env=2,
        epochs=1,
        minibatch_messages=2,
        lr=1e-3,
        user_model="template",
        eval_episodes=0,
        logdir=directory / "runs",
        progress=False,
    )
    return PPOConfig(**(settings | overrides))


def short_grpo_run(tmp_path_factory, **changes) -> Path:
    """A ``train grpo`` run of seconds from the base LM (2 groups of 2, 8-token messages,
    tempered, the final policy kept) with ``changes`` to its config; its checkpoint dir."""
    from baselines.grpo import main
    from baselines.grpo_config import GRPOConfig

    settings = dict(
        init="base",
        out=tmp_path_factory.mktemp("grpo"),
        groups=2,
        group_size=2,
        temperature=1.5,
        max_new_tokens=8,
        minibatch_rows=2,
        keep="last",  # the best on dev may be the init itself
        logdir=tmp_path_factory.mktemp("runs"),
        progress=False,
    )
    return main(GRPOConfig(**{**settings, **changes}))


#: A small chat template in the shape real ones have: a header per role, an end marker.
TEMPLATE = (
    "{% for m in messages %}### {{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}### assistant\n{% endif %}"
)
#: Gemma-like: refuses a system message.
NO_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def save_chat_model(path: Path, template: str = TEMPLATE, seed: int = 0) -> Path:
    """A random tiny Llama with the shipped tokenizer and a chat template, saved."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    tokenizer.chat_template = template
    save_tiny_llama(tokenizer, path, seed=seed)
    # Rotary positions have no weights: a context of 2048 holds the system prompt and a
    # whole episode, as a real chat model's does.
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 2048}))
    return path
