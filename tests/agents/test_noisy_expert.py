"""The noisy expert slips at the rates its ``Noise`` documents, measured over many episodes.

Per message it slips into a uniformly random act with probability ``slip`` (0.2), else
asks for the constraints again with probability ``redundant_question`` (0.2, once any
constraint is known); per episode it means to leave one requested fact out of its first
answer with probability ``forget_fact`` (0.4). A slip can land on the right act, so the
rates are estimated from the messages that only a slip (or only a redundant question)
can explain.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

from agents import load_agent
from agents.expert import expert_act
from agents.noisy_expert import Noise, NoisyExpertAgent
from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS

EPISODES = 400  # about 2,400 messages: a rate's standard error is about 0.01


@pytest.fixture(scope="module")
def decisions() -> tuple[list[tuple[str, str, bool]], list[NoisyExpertAgent]]:
    """Per message ``(the expert's act, the noisy expert's act, constraints known)``, and
    the agent of each episode as it ended."""
    env = gym.make("Dialog-v1", split="train", user_model="template")
    log, agents = [], []
    for seed in range(EPISODES):
        agent = NoisyExpertAgent()
        decide = agent.decide

        def recording_decide(state, decide=decide):
            act = decide(state)
            log.append((expert_act(state), act, bool(state.constraints)))
            return act

        agent.decide = recording_decide
        obs, _ = env.reset(seed=seed)
        agent.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(agent.act(obs))
            done = terminated or truncated
        agents.append(agent)
    return log, agents


def test_slip_rate_is_the_documented_one(decisions):
    log, _ = decisions
    n_acts = len(ASSISTANT_ACTS)
    # Only a slip writes an act that is neither the expert's nor "ask_constraints";
    # a slip draws such an act with probability (acts left) / n_acts.
    slips_seen = sum(noisy not in (expert, "ask_constraints") for expert, noisy, _ in log)
    slips_drawable = sum(
        (n_acts - len({expert, "ask_constraints"})) / n_acts for expert, _, _ in log
    )
    assert len(log) > 2000
    assert slips_seen / slips_drawable == pytest.approx(Noise().slip, abs=0.03)


def test_redundant_question_rate_is_the_documented_one(decisions):
    log, _ = decisions
    noise = Noise()
    # Where the expert would not ask and constraints are known, "ask_constraints" comes
    # from a slip (slip / n_acts) or from a redundant question (its own share of the
    # message's one draw, apart from the slip's).
    eligible = [noisy for expert, noisy, known in log if known and expert != "ask_constraints"]
    asked = sum(noisy == "ask_constraints" for noisy in eligible) / len(eligible)
    rate = asked - noise.slip / len(ASSISTANT_ACTS)
    assert len(eligible) > 1000
    assert rate == pytest.approx(noise.redundant_question, abs=0.03)


def test_forgetful_episodes_come_at_the_documented_rate_and_only_they_forget(decisions):
    agent = NoisyExpertAgent()
    forgetful = 0
    for seed in range(5000):  # the per-episode draw alone: standard error 0.007
        agent.reset(seed=seed)
        forgetful += agent.forgets
    assert forgetful / 5000 == pytest.approx(Noise().forget_fact, abs=0.02)
    _, agents = decisions
    left_out = [a for a in agents if a.forgotten is not None]
    assert left_out and all(a.forgets for a in left_out)


def test_a_noiseless_noisy_expert_is_the_expert():
    env = gym.make("Dialog-v1", split="train", user_model="template")
    quiet = NoisyExpertAgent(Noise(redundant_question=0.0, forget_fact=0.0, slip=0.0))
    expert = load_agent("expert")
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        quiet.reset(seed=seed)
        done = False
        while not done:
            message = quiet.act(obs)
            assert message == expert.act(obs)
            obs, _, terminated, truncated, _ = env.step(message)
            done = terminated or truncated
