"""Dialog envs as a verifiers ``MultiTurnEnv``, rolled out by verifiers' own loop against
``dialog-bench serve``'s chat-completions server on loopback."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest

integration = pytest.importorskip("dialog_env.integrations.verifiers")  # needs verifiers 0.3

import verifiers as vf  # noqa: E402
from http_helpers import served  # noqa: E402

from agents import load_agent  # noqa: E402
from dialog_bench.serve import AgentServer  # noqa: E402

SEEDS = [0, 1, 2]


def content(message) -> str:
    return message["content"] if isinstance(message, dict) else message.content


def role(message) -> str:
    return message["role"] if isinstance(message, dict) else message.role


def replay(seed: int, messages: list[str]) -> tuple[float, list[dict], bool]:
    """The env's return, turns and success for ``seed`` played with ``messages``."""
    env = gym.make("Dialog-v1", split="test")
    env.reset(seed=seed)
    rewards, done = [], False
    for message in messages:
        assert not done, "verifiers sent a message after the episode ended"
        _, reward, terminated, truncated, info = env.step(message)
        rewards.append(reward)
        done = terminated or truncated
    assert done, "the rollout stopped before the episode ended"
    return math.fsum(rewards), info["turns"], bool(info["success"])


def own_messages(seed: int) -> list[str]:
    """What sft-expert writes for ``seed`` in process (seeded 0, as the server is)."""
    agent = load_agent("sft-expert")
    agent.reset(seed=0)
    env = gym.make("Dialog-v1", split="test")
    observation, _ = env.reset(seed=seed)
    messages, done = [], False
    while not done:
        messages.append(agent.act(observation))
        observation, _, terminated, truncated, _ = env.step(messages[-1])
        done = terminated or truncated
    return messages


def test_verifiers_rollouts_against_a_served_agent_give_the_envs_returns():
    env = integration.load_environment("Dialog-v1", split="test", seeds=SEEDS)
    with served(AgentServer(load_agent("sft-expert"), ("127.0.0.1", 0))) as server:
        client = vf.ClientConfig(api_base_url=server.url, api_key_var="OPENAI_API_KEY")
        results = env.evaluate_sync(client=client, model=server.model_id, max_retries=0)
    outputs = sorted(results["outputs"], key=lambda output: output["info"]["seed"])
    assert [output["info"]["seed"] for output in outputs] == SEEDS
    for seed, output in zip(SEEDS, outputs, strict=True):
        assert output["error"] is None and output["is_completed"]
        said = [content(m) for m in output["completion"] if role(m) == "assistant"]
        assert said == own_messages(seed)  # the served agent played as it does in process
        expected_return, turns, success = replay(seed, said)
        assert output["reward"] == expected_return  # the rubric is the env's return
        assert output["metrics"]["episode_success"] == float(success)
        # the environment's responses are the env's own user and tool turns
        heard = "\n".join(content(m) for m in output["completion"] if role(m) == "user")
        for turn in turns[1:]:
            if turn["role"] != "assistant":
                assert turn["text"] in heard


def test_the_dataset_is_the_seeds_and_each_prompt_the_episodes_opening():
    env = integration.load_environment("Dialog-v1", num_episodes=3, user_model="template")
    dataset = env.get_eval_dataset()
    assert [row["seed"] for row in dataset["info"]] == [0, 1, 2]
    local = gym.make("Dialog-v1", user_model="template", split="test")
    for seed, prompt in zip(range(3), dataset["prompt"], strict=True):
        observation, _ = local.reset(seed=seed)
        assert prompt[0]["role"] == "system" and "[search]" in prompt[0]["content"]
        assert [m["role"] for m in prompt[1:]] == ["user"]
        assert f"user: {prompt[1]['content']}" == observation


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"env_id": "Dialog-Acts-v1"}, "not a text id"),
        ({"env_id": "Dialog-v9"}, "must be one of"),
        ({"num_episodes": 0}, "num_episodes"),
        ({"seeds": [1, 1]}, "distinct"),
    ],
)
def test_load_environment_refuses_what_it_cannot_serve_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        integration.load_environment(user_model="template", **kwargs)
