"""Dialog-v1 as a TRL environment_factory: the tool env itself, then two GRPO steps.

The GRPO test needs the ``trl`` extra (and ``datasets``) and is skipped without it.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import gymnasium as gym
import pytest

from dialog_env.integrations.trl import DialogToolEnv, environment_factory, seed_dataset


def replayed_return(seed: int, messages: list[str], **env_kwargs) -> float:
    """The return of ``messages`` on a fresh Dialog-v1 episode of ``seed``."""
    env = gym.make("Dialog-v1", split="train", **env_kwargs)
    env.reset(seed=seed)
    return math.fsum(env.step(m)[1] for m in messages)


def test_say_steps_the_env_and_returns_what_came_back():
    env = DialogToolEnv(user_model="template")
    opening = env.reset(seed=5, prompt="ignored", other_column=1)
    text_env = gym.make("Dialog-v1", split="train", user_model="template")
    assert opening == "\n" + text_env.reset(seed=5)[0]
    messages = ["Which area and food would you like?", "[search] area=north"]
    replies = [env.say(m) for m in messages]
    assert replies[1].startswith("tool: [result] search area=north")
    for message, reply in zip(messages, replies, strict=True):
        obs, *_ = text_env.step(message)
        assert obs.endswith(reply)  # the reply is exactly the turns the step added
    assert env.get_reward() == replayed_return(5, messages, user_model="template") < 0
    assert len(env.rewards) == 2 and not env.done


def test_generations_of_a_group_meet_the_identical_episode():
    make = environment_factory(user_model="template")
    group = [make() for _ in range(3)]
    assert len({env.reset(seed=11) for env in group}) == 1
    assert len({env.say("[search] area=west") for env in group}) == 1
    assert len({DialogToolEnv(user_model="template").reset(seed=s) for s in (11, 12)}) == 2


def test_misuse_gets_clear_errors():
    env = DialogToolEnv(user_model="template")
    with pytest.raises(RuntimeError, match="reset"):
        env.say("hi")
    with pytest.raises(ValueError, match="'seed' column"):
        env.reset(prompt="no seed")
    with pytest.raises(ValueError, match="non-negative int"):
        env.reset(seed=-1)
    env.reset(seed=0)
    with pytest.raises(TypeError, match="string"):
        env.say(3)
    assert "conversation has ended" in env.say("Goodbye!")
    with pytest.raises(RuntimeError, match="has ended"):
        env.say("one more thing")
    assert env.get_reward() == pytest.approx(-0.02)


def test_seed_dataset_has_prompt_and_seed_columns():
    pytest.importorskip("datasets")
    dataset = seed_dataset([3, 4])
    assert dataset.column_names == ["prompt", "seed"] and dataset["seed"] == [3, 4]
    assert dataset[0]["prompt"][0]["role"] == "user"
    with pytest.raises(ValueError, match="non-empty"):
        seed_dataset([])


# -- two GRPO steps of the tiny LM on CPU -----------------------------------------------------

TEACH_STEPS = 120
CALL = '<tool_call>\n{"name": "say", "arguments": {"message": "Goodbye!"}}\n</tool_call>'


class RecordingEnv(DialogToolEnv):
    """Remembers each rollout: its seed, opening, messages and the reward it gave (its
    tools are DialogToolEnv's: ``say`` with the same schema)."""

    log: list[dict] = []

    def reset(self, seed=None, **row):
        self.opening = super().reset(seed, **row)
        return self.opening

    def get_reward(self) -> float:
        reward = super().get_reward()
        entry = dict(seed=self.seed, opening=self.opening, messages=list(self.messages))
        RecordingEnv.log.append({**entry, "reward": reward})
        return reward


def tiny_tool_model(tmp_path: Path):
    """The shipped tiny LM with a Qwen2.5 chat template (one TRL can parse tool calls of),
    taught in a few steps to answer with a ``say`` call, so that GRPO's rollouts call it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template

    from dialog_env.integrations.trl import INSTRUCTIONS
    from dialog_env.lm import TINY_MODEL_DIR

    model_dir = tmp_path / "tiny"
    shutil.copytree(TINY_MODEL_DIR, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    # Rotary positions: a longer context takes no new weights, and the tool schema is long.
    (model_dir / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 2048}))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    tokenizer.chat_template, tokenizer.padding_side = qwen2_5_chat_template, "left"
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, use_safetensors=True, trust_remote_code=False, local_files_only=True
    )
    env = RecordingEnv(user_model="template")  # the schema GRPO will show
    target = tokenizer(CALL, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    rows = []
    for seed in range(4):
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": INSTRUCTIONS + env.reset(seed=seed)}],
            tools=[env.say],
            tokenize=False,
            add_generation_prompt=True,
        )
        rows.append(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    # Each step reads its prompt without gradients (a fresh KV cache) and learns only the
    # call's 64 tokens, not the ~1,000 of the prompt with the tool schema.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(TEACH_STEPS):
        row = rows[step % len(rows)]
        with torch.no_grad():  # all of the prompt but its last token, which predicts the call
            past = model(input_ids=torch.tensor([row[:-1]]), use_cache=True).past_key_values
        ids = torch.tensor([row[-1:] + target])
        labels = ids.clone()
        labels[0, 0] = -100
        loss = model(input_ids=ids, labels=labels, past_key_values=past).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return model, tokenizer


@pytest.mark.slow  # ~35 s on a busy 2-core machine: teaching the call, then two GRPO steps
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
def test_two_grpo_steps_take_their_rewards_from_the_env(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    model, tokenizer = tiny_tool_model(tmp_path)
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=160,
        learning_rate=1e-4,
        temperature=1.0,
        beta=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    RecordingEnv.log = []
    trainer = trl.GRPOTrainer(
        model=model,
        args=args,
        train_dataset=seed_dataset(range(8)),
        processing_class=tokenizer,
        environment_factory=lambda: RecordingEnv(user_model="template"),
    )
    trainer.train()
    steps = [h for h in trainer.state.log_history if "rewards/RecordingEnv/mean" in h]
    log = RecordingEnv.log
    assert len(steps) == 2 and len(log) == 2 * 4
    for step, rollouts in zip(steps, (log[:4], log[4:]), strict=True):
        # One group per step: four generations of one seed, all meeting the same opening.
        assert (
            len({r["seed"] for r in rollouts}) == 1 and len({r["opening"] for r in rollouts}) == 1
        )
        mean = sum(r["reward"] for r in rollouts) / 4
        assert step["rewards/RecordingEnv/mean"] == pytest.approx(mean)
        assert step["reward"] == pytest.approx(mean)  # the env is the only reward source
    # Each reward is the env's return for what was said: replayed on a fresh env.
    for r in log:
        assert r["reward"] == replayed_return(r["seed"], r["messages"], user_model="template")
    said = [r for r in log if r["messages"]]
    assert said and all(r["reward"] < 0 for r in said)  # the model called say; each step cost
    assert sum(h["tools/call_frequency"] for h in steps) > 0
