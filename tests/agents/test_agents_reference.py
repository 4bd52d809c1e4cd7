"""The reference agents reach their figures; success is earned only by serving the goal."""

from __future__ import annotations

import gymnasium as gym
import pytest
from conftest import VOICES, run_episode

from agents import Agent, load_agent
from agents.base import BaseAgent
from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.booking.tools import format_venue
from dialog_env.text import parse_transcript

TEST_SEEDS = range(500)


def success_rate(agent, seeds, **kwargs) -> float:
    env = gym.make("Dialog-v1", split="test", **kwargs)
    return sum(bool(run_episode(env, agent, s)[1].get("success")) for s in seeds) / len(seeds)


# The user decides from acts, not wording, so the 500-seed figures use the fast template
# voice; the LM voice's own 500-episode figure is bench/voice_quality.py's to measure.
def test_expert_succeeds_on_test_split():
    assert success_rate(load_agent("expert"), TEST_SEEDS, user_model="template") >= 0.95


@pytest.mark.parametrize("voice", [v for v in VOICES if v != "template"])
def test_expert_succeeds_with_the_lm_voice(voice):
    assert success_rate(load_agent("expert"), range(60), user_model=voice) >= 0.95


def test_random_stays_near_zero():
    assert success_rate(load_agent("random"), TEST_SEEDS, user_model="template") <= 0.05


def test_random_agent_is_seeded():
    a, b = load_agent("random"), load_agent("random")
    a.reset(seed=4)
    b.reset(seed=4)
    assert [a.act("") for _ in range(20)] == [b.act("") for _ in range(20)]


def test_builtin_agents_follow_the_protocol():
    for name in ("expert", "random"):
        agent = load_agent(name)
        assert isinstance(agent, Agent)
        assert agent.paradigm == "reference" and agent.interface == "text"


def test_unknown_agent_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown agent"):
        load_agent("oracle")
    with pytest.raises(ValueError, match="checkpoint"):
        load_agent(tmp_path)


class EchoAgent(BaseAgent):
    """Repeats the user's last sentence."""

    def act(self, observation):
        return [t for t in parse_transcript(observation) if t.role == "user"][-1].text


class ByeAgent(BaseAgent):
    def act(self, observation):
        return "Goodbye!"


class DumpAgent(BaseAgent):
    """Searches with what the user said, then pastes the raw search result at the user."""

    def act(self, observation):
        turns = parse_transcript(observation)
        if turns[-1].role == "tool":
            return "Here is everything: " + turns[-1].text
        from dialog_env.tasks.booking.tracker import track

        query = track(observation).query or {"food": "thai"}
        return "[search] " + " ".join(f"{k}={v}" for k, v in query.items())


class EverythingAgent(BaseAgent):
    """Names every venue with all its facts in one message, and books nothing."""

    def act(self, observation):
        venues = load_database()[0].venues
        return " | ".join(format_venue(v) for v in venues)[:499]


@pytest.mark.parametrize(
    "agent",
    [EchoAgent(), ByeAgent(), DumpAgent(), EverythingAgent()],
    ids=lambda a: type(a).__name__,
)
def test_degenerate_agents_never_succeed(agent):
    assert success_rate(agent, range(100), user_model="template") == 0.0


def test_expert_metrics_are_perfect_when_it_succeeds():
    env = gym.make("Dialog-v1", split="test")
    expert = load_agent("expert")
    for seed in range(30):
        _, info, ret = run_episode(env, expert, seed)
        assert info["success"]
        m = info["metrics"]
        assert m["inform_precision"] == m["inform_recall"] == 1.0
        assert m["booked"] in (True, None) and m["patience_spent"] == 0
        assert 0 < ret < 1
