"""Any local chat model as an agent (agents.hf_chat): prompts, seeds, safety, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
from lm_helpers import NO_SYSTEM_TEMPLATE, save_chat_model

import dialog_env  # noqa: F401
from agents import PARADIGMS, load_agent
from agents.hf_chat import HFChatAgent, booking_system_prompt, transcript_messages
from dialog_env.lm.loading import ModelLoadError


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory) -> Path:
    return save_chat_model(tmp_path_factory.mktemp("models") / "tiny-chat")


def expert_transcript(seed: int = 1) -> str:
    """A finished expert episode's transcript (template voice): all three roles."""
    env = gym.make("Dialog-v1", user_model="template")
    expert = load_agent("expert")
    obs, _ = env.reset(seed=seed)
    while True:
        obs, _, terminated, truncated, _ = env.step(expert.act(obs))
        if terminated or truncated:
            return obs


def test_transcript_becomes_messages_with_roles_in_order():
    obs = expert_transcript()
    messages = transcript_messages(obs, "SYSTEM")
    assert messages[0] == {"role": "system", "content": "SYSTEM"}
    roles = [m["role"] for m in messages[1:]]
    assert roles[0] == "user" and set(roles) == {"user", "assistant"}
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))  # they alternate
    lines = obs.split("\n")
    tool_lines = [line.removeprefix("tool: ") for line in lines if line.startswith("tool: ")]
    tool_messages = [m["content"] for m in messages if m["content"].startswith("Tool result: ")]
    assert tool_messages == [f"Tool result: {t}" for t in tool_lines] and tool_lines
    said = [m["content"] for m in messages if m["role"] == "assistant"]
    assert said == [line.removeprefix("assistant: ") for line in lines if "assistant: " in line]
    # With tool_role="tool", a tool result keeps a role of its own.
    tool_roles = [m["role"] for m in transcript_messages(obs, None, tool_role="tool")]
    assert tool_roles.count("tool") == len(tool_lines) and "system" not in tool_roles
    with pytest.raises(ValueError, match="tool_role"):
        transcript_messages(obs, tool_role="function")


def test_prompt_is_the_models_chat_template(chat_dir):
    from transformers import AutoTokenizer

    agent = load_agent(f"hf:{chat_dir}")
    obs = expert_transcript()
    expected = AutoTokenizer.from_pretrained(chat_dir).apply_chat_template(
        transcript_messages(obs, booking_system_prompt()),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert agent.prompt_text(obs) == expected
    assert expected.startswith("### system\nYou are a restaurant booking assistant")
    assert "[search] area=west" in expected and expected.endswith("### assistant\n")
    assert '[book] name="The Golden Fox" people=2 day=friday time=19:00' in expected


def test_a_template_without_system_role_gets_the_prompt_in_the_first_user_turn(tmp_path):
    agent = HFChatAgent.from_pretrained(save_chat_model(tmp_path / "m", NO_SYSTEM_TEMPLATE))
    messages = agent.messages("user: hi\nassistant: hello\nuser: thai food please")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == f"{booking_system_prompt()}\n\nhi"
    assert agent.prompt_text("user: hi").startswith("<user>You are a restaurant")


def test_oldest_turns_leave_a_prompt_that_would_not_fit(chat_dir):
    agent = HFChatAgent.from_pretrained(chat_dir, system_prompt="S", max_new_tokens=8)
    agent.context = 120  # 2048 would need a very long transcript
    obs = expert_transcript()
    prompt = agent.prompt_text(obs)
    assert agent._count(prompt) <= agent.context - agent.max_new_tokens
    assert prompt.startswith("### system\nS</s>") and obs.split("\n")[-1][6:] in prompt
    assert obs.split("\n")[0][6:] not in prompt  # the opening turn was left out


def test_greedy_and_sampled_messages_are_seeded_and_batch_independent(chat_dir):
    observations = ["user: I want thai food.", "user: hi\nassistant: hello\nuser: cheap please"]
    greedy = HFChatAgent.from_pretrained(chat_dir, device="cpu", max_new_tokens=12)
    assert greedy.act_batch(observations) == [greedy.act(o) for o in observations]
    sampled = HFChatAgent.from_pretrained(chat_dir, temperature=1.0, max_new_tokens=12)

    def messages(seed: int, batch: bool) -> list[str]:
        sampled.reset(seed=seed)
        return sampled.act_batch(observations) if batch else [sampled.act(o) for o in observations]

    first = messages(1, batch=True)
    assert first == messages(1, batch=True) == messages(1, batch=False)
    assert first != messages(2, batch=True)  # the seed draws the sample
    greedy.reset(seed=2)
    assert greedy.act_batch(observations) == greedy.act_batch(observations)
    assert all(isinstance(m, str) for m in first)


def test_device_is_checked(chat_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        HFChatAgent.from_pretrained(chat_dir, device="cuda")


def test_pickle_weights_are_refused(tmp_path):
    model = tmp_path / "pickled"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (model / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_agent(f"hf:{model}")
    checkpoint = tmp_path / "ckpt"
    (checkpoint / "lm").mkdir(parents=True)
    (checkpoint / "config.json").write_text('{"agent": "hf-chat"}')
    (checkpoint / "lm" / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(ValueError, match=r"lm/pytorch_model.bin can only be read by unpickling"):
        load_agent(checkpoint)


def test_never_remote_code_always_safetensors_and_local(tmp_path, monkeypatch):
    import transformers

    model = save_chat_model(tmp_path / "spied")  # a directory the load cache has not seen
    calls = []
    for cls in ("AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"):
        auto = getattr(transformers, cls)
        original = auto.from_pretrained.__func__

        def spy(klass, *args, _original=original, _cls=cls, **kwargs):
            calls.append((_cls, kwargs))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", classmethod(spy))
    agent = load_agent(f"hf:{model}")
    assert isinstance(agent, HFChatAgent)
    assert {cls for cls, _ in calls} == {"AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"}
    for _, kwargs in calls:
        assert kwargs["trust_remote_code"] is False and kwargs["local_files_only"] is True
    model_kwargs = [kw for cls, kw in calls if cls == "AutoModelForCausalLM"]
    assert [kw["use_safetensors"] for kw in model_kwargs] == [True]


def test_remote_code_models_are_refused(tmp_path):
    model = save_chat_model(tmp_path / "custom")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.Evil"}
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="trust_remote_code stays off"):
        load_agent(f"hf:{model}")


def test_a_checkpoint_directory_configures_the_agent(tmp_path, chat_dir):
    import shutil

    checkpoint = tmp_path / "qwen-sampled"
    shutil.copytree(chat_dir, checkpoint / "lm")
    config = {"agent": "hf-chat", "temperature": 0.7, "max_new_tokens": 20, "tool_role": "tool"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    agent = load_agent(checkpoint)
    assert isinstance(agent, HFChatAgent) and agent.name == "qwen-sampled"
    assert (agent.temperature, agent.max_new_tokens, agent.tool_role) == (0.7, 20, "tool")
    assert agent.paradigm == "zero-shot" and agent.source_directory is None
    (checkpoint / "config.json").write_text(json.dumps({**config, "temperature": -1}))
    with pytest.raises(ValueError, match="temperature must be a number in 0-5"):
        load_agent(checkpoint)


def test_evaluate_records_paradigm_zero_shot(chat_dir, tmp_path):
    from dialog_env.lm.model_files import directory_sha256
    from leaderboard.episodes import get_episode_set
    from leaderboard.evaluate import evaluate_agent
    from leaderboard.results import read_results, write_results
    from leaderboard.verify import verify_results

    episodes = get_episode_set("Dialog-v1", "test", limit=2)
    results = evaluate_agent(f"hf:{chat_dir}", episodes, batch_size=2, progress=False)
    header = results["header"]
    assert (header["agent"], header["paradigm"], header["interface"]) == (
        "tiny-chat",
        "zero-shot",
        "text",
    )
    assert header["model_sha256"] == directory_sha256(chat_dir) and header["budget"] == {}
    assert header["evaluation"]["agent_calls"] == "act_batch"
    path = write_results(tmp_path / "r.json", results)  # the schema takes zero-shot
    assert read_results(path)["header"]["paradigm"] == "zero-shot"
    verified = verify_results(results, progress=False)  # and the replay agrees
    assert [e["seed"] for e in verified.episodes] == list(episodes.seeds)


def test_dialog_bench_evaluate_takes_hf_path(chat_dir, tmp_path, capsys):
    import argparse

    from leaderboard import evaluate
    from leaderboard.results import read_results

    parser = argparse.ArgumentParser()
    evaluate.add_parser(parser.add_subparsers())
    out = tmp_path / "zero-shot.json"
    args = parser.parse_args(
        ["evaluate", f"hf:{chat_dir}", "--episodes", "dev", "--limit", "1", "--quiet"]
        + ["--out", str(out)]
    )
    assert args.func(args) == 0
    assert "tiny-chat on Dialog-v1/dev[:1]" in capsys.readouterr().out
    assert read_results(out)["header"]["paradigm"] == "zero-shot"


def test_the_results_schema_knows_exactly_the_agents_paradigms():
    from leaderboard.results import load_results_schema

    schema = load_results_schema()
    enum = schema["properties"]["header"]["properties"]["paradigm"]["enum"]
    assert tuple(enum) == PARADIGMS and "zero-shot" in enum
