"""The careless chat expert: seeded decisions, correct copies, and no flaw at rates 0."""

from __future__ import annotations

import gymnasium as gym
import pytest

import dialog_env  # noqa: F401
from agents.careless_chat_expert import CHAT_FLAWS, CarelessChatExpert, ChatCarelessness
from agents.chat_expert import ChatExpertAgent


def _play(agent, seed: int) -> tuple[list[str], list[dict]]:
    env = gym.make("Dialog-Chat-v1", reward="gold")
    obs, _ = env.reset(seed=seed)
    agent.reset(seed=seed)
    messages, judged, done = [], [], False
    while not done:
        message = agent.act(obs)
        obs, _, terminated, truncated, info = env.step(message)
        messages.append(message)
        if "gold" in info:
            judged.append(info["gold"])
        done = terminated or truncated
    return messages, judged


@pytest.mark.parametrize("seed", range(8))
def test_the_same_seed_gives_the_same_episode(seed):
    assert _play(CarelessChatExpert(), seed) == _play(CarelessChatExpert(), seed)


def test_its_flaws_are_decisions_never_wrong_or_invented_facts():
    taken = set()
    for seed in range(40):
        agent = CarelessChatExpert()
        _, judged = _play(agent, seed)
        assert all(terms["wrong"] == 0 and terms["invented"] == 0 for terms in judged)
        taken |= {d.flaw for d in agent.decisions}
    assert taken == set(CHAT_FLAWS)


def test_at_rates_zero_it_is_the_chat_expert():
    calm = ChatCarelessness(skip_search=0.0, one_part=0.0, filler=0.0)
    for seed in range(10):
        assert _play(CarelessChatExpert(calm), seed) == _play(ChatExpertAgent(), seed)


def test_a_rate_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="one_part must be a probability"):
        ChatCarelessness(one_part=1.5)
