"""The careless expert: seeded decisions at its documented rates, clean copies, wired in.

Its module docstring documents the rates and what they give on train seeds 0-1999 with
the template voice; these tests play those 2,000 episodes again (about 5 s) and hold the
agent to them, check every value it writes against the transcript it read (an oracle
of their own, not the agent's code), and check that each failure is one of its flawed
decisions, on its recorded decisions and on the published test transcripts (LM voice).
"""

from __future__ import annotations

import re
from dataclasses import asdict

import gymnasium as gym
import pytest
from conftest import REPO_ROOT

from agents import load_agent
from agents.careless_expert import FLAWS, CarelessExpert, Carelessness
from baselines.careless_rates import Episode, figures
from baselines.careless_rates import play_episode as play
from dialog_env.tasks.booking.domain import FACT_SLOTS
from dialog_env.tasks.booking.parser import parse_agent
from dialog_env.tasks.booking.tools import parse_kv, parse_search_result
from dialog_env.tasks.booking.tracker import track
from dialog_env.text import Turn

PUBLISHED = REPO_ROOT / "leaderboard/results/Dialog-v1/careless-expert.json"
#: The docstring's figures on train seeds 0-1999, template voice, at the default rates.
DOCUMENTED = {
    "failure": 0.4335,  # 867 of 2000
    "rate": (0.45, 0.23, 0.31),
    "survival": (0.61, 1.21, 0.83),
}
_NO_TABLE_RE = re.compile(r"no table at (.+?) on (\w+) at (\d\d:\d\d)\b")


def copy_errors(turns: list[dict[str, str]]) -> list[str]:
    """Every value an assistant wrote that is not a copy of what the transcript showed:
    search and booking arguments against the user's tracked words, names against the
    search results, facts against the named venue's record, references and failed
    bookings against the tool's results."""
    errors: list[str] = []
    shown: dict[str, dict[str, str]] = {}
    refs: set[str] = set()
    for i, turn in enumerate(turns):
        text = turn["text"]
        if turn["role"] == "tool":
            shown.update({v["name"]: v for v in parse_search_result(text)[2]})
            if text.startswith("[result] book ok"):
                refs.add(parse_kv(text)["ref"])
            continue
        if turn["role"] != "assistant":
            continue
        state = track([Turn(t["role"], t["text"]) for t in turns[:i]])
        if text.startswith("[search]"):
            wrong = {s: v for s, v in parse_kv(text).items() if state.constraints.get(s) != v}
            errors += [f"search {s}={v}" for s, v in wrong.items()]
        elif text.startswith("[book]"):
            want = {"name": state.offered, **state.booking}
            errors += [f"book {k}={v}" for k, v in parse_kv(text).items() if want.get(k) != v]
        else:
            errors += _message_errors(text, state, shown, refs)
    return errors


def _message_errors(text, state, shown, refs) -> list[str]:
    errors = []
    acts = {a.intent: dict(a.slots) for a in parse_agent(text)}
    name = acts.get("offer", {}).get("name", state.offered)
    if "offer" in acts and name not in shown:
        errors.append(f"offer of {name}, never shown")
    for slot, values in acts.get("inform", {}).items():
        errors += [f"{slot} {v}" for v in values.split("|") if shown.get(name, {}).get(slot) != v]
    errors += [
        f"ref {r}" for r in acts.get("book_ok", {}).get("ref", "").split("|") if r and r not in refs
    ]
    m = _NO_TABLE_RE.search(text)
    a = state.last_attempt
    if m and (a is None or m.groups() != (a.name, a.day, a.time)):
        errors.append(f"failed booking {m.groups()}")
    return errors


@pytest.fixture(scope="module")
def documented_run() -> list[tuple[dict, Episode]]:
    """The careless expert at its default rates on train seeds 0-1999, template voice."""
    env = gym.make("Dialog-v1", split="train", user_model="template")
    agent = CarelessExpert()
    return [play(agent, env, seed) for seed in range(2000)]


def test_its_figures_are_the_documented_ones(documented_run):
    fig = figures([episode for _, episode in documented_run])
    assert fig["failure"] == pytest.approx(DOCUMENTED["failure"], abs=1e-9)
    for flaw, rate, survival in zip(FLAWS, DOCUMENTED["rate"], DOCUMENTED["survival"], strict=True):
        assert fig[f"{flaw}.rate"] == pytest.approx(rate, abs=5e-3)
        assert fig[f"{flaw}.survival"] == pytest.approx(survival, abs=5e-3)
    # The targets the rates were chosen for (issue 26).
    assert 0.30 <= fig["failure"] <= 0.50
    assert all(fig[f"{f}.survival"] >= 0.5 for f in FLAWS)


def test_inclinations_come_at_the_documented_rates():
    agent, rates = CarelessExpert(), Carelessness()
    counts = dict.fromkeys(FLAWS, 0)
    for seed in range(5000):  # the per-episode draws alone: standard error <= 0.007
        agent.reset(seed=seed)
        for flaw in FLAWS:
            counts[flaw] += agent.inclined[flaw]
    for flaw in FLAWS:
        assert counts[flaw] / 5000 == pytest.approx(getattr(rates, flaw), abs=0.02)


def test_every_failure_has_a_flawed_decision_and_every_copy_is_right(documented_run):
    failed = [(info, ep) for info, ep in documented_run if not ep.success]
    assert len(failed) > 500
    assert all(ep.flaws for _, ep in failed)
    for info, _ in documented_run:
        assert copy_errors(info["turns"]) == [], info["turns"]


def test_the_copy_oracle_catches_a_wrong_copy(documented_run):
    info = next(info for info, ep in documented_run if ep.success and info["metrics"]["booked"])
    turns = [dict(t) for t in info["turns"]]
    last = max(i for i, t in enumerate(turns) if "reference number is" in t["text"])
    ref = turns[last]["text"].split("reference number is ")[1][:8]
    turns[last]["text"] = turns[last]["text"].replace(ref, ref[::-1])
    assert copy_errors(turns) == [f"ref {ref[::-1]}"]


def test_same_seed_same_episode_and_lower_rates_only_take_inclinations_away():
    env = gym.make("Dialog-v1", split="train", user_model="template")
    agent, low = CarelessExpert(), CarelessExpert(Carelessness(0.3, 0.3, 0.3))
    seen = set()
    for seed in range(40):
        first, ep = play(agent, env, seed)
        again, _ = play(load_agent("careless-expert"), env, seed)
        assert first["turns"] == again["turns"]
        low.reset(seed=seed)
        assert {f for f in FLAWS if low.inclined[f]} <= {f for f in FLAWS if agent.inclined[f]}
        assert (low.draws, low.neglected) == (agent.draws, agent.neglected)
        seen.add(ep.flaws)
    assert len(seen) > 3  # the seed, not the instance, decides


def test_a_careless_expert_without_carelessness_is_the_expert():
    env = gym.make("Dialog-v1", split="train", user_model="template")
    careful, expert = CarelessExpert(Carelessness(0.0, 0.0, 0.0)), load_agent("expert")
    for seed in range(30):
        info, _ = play(careful, env, seed)
        obs = ""
        for turn in info["turns"]:
            if turn["role"] == "assistant":
                assert turn["text"] == expert.act(obs)
            obs += ("\n" if obs else "") + f"{turn['role']}: {turn['text']}"


def test_each_flaw_alone_does_what_it_says():
    env = gym.make("Dialog-v1", split="train", user_model="template")
    said = {}
    for i, flaw in enumerate(FLAWS):
        agent = CarelessExpert(Carelessness(*(float(j == i) for j in range(3))))
        for seed in range(60):
            info, ep = play(agent, env, seed)
            assert ep.flaws <= {flaw}
            said.setdefault(flaw, set()).update(d.what for d in agent.decisions)
    assert said["drop_constraint"] == {"search without price", "goodbye after a rejected offer"}
    assert said["close_after_booking"] == {
        "goodbye after a failed booking",
        "goodbye with the booking's answer",
    }
    assert "answer and goodbye" in said["neglect_fact"]
    assert {f"answer without {f}, goodbye" for f in FACT_SLOTS} <= said["neglect_fact"]


def test_rates_outside_zero_one_are_refused():
    with pytest.raises(ValueError, match="neglect_fact must be a probability"):
        Carelessness(neglect_fact=1.5)


def test_demos_record_its_rates_replay_and_give_back_its_decisions():
    from baselines.careless_rates import demo_episodes
    from baselines.demos import generate_demos, replay_demo

    records, meta = generate_demos(
        "careless-expert", range(12), batch_size=4, progress=False, user_model="template"
    )
    assert meta["generator"] == "careless-expert" and meta["noise"] == asdict(Carelessness())
    env = gym.make("Dialog-v1", split="train", user_model="template")
    played = []
    for record in records:
        info, episode = play(CarelessExpert(), env, record["seed"])
        assert record["turns"] == info["turns"]
        assert replay_demo(record, meta) == record["rewards"]
        played.append(episode)
    assert demo_episodes(records, Carelessness()) == played
    with pytest.raises(ValueError, match="is not the agent's"):
        demo_episodes(records, Carelessness(0.0, 0.0, 0.0))


def test_it_is_listed_and_loads_by_name():
    from leaderboard.agents_list import agent_rows

    agent = load_agent("careless-expert")
    assert isinstance(agent, CarelessExpert) and agent.paradigm == "reference"
    row = next(r for r in agent_rows() if r[0] == "careless-expert")
    assert row[1:3] == ("reference", "text") and row[4].startswith("Dialog-v1 success 0.")


def _flaw_of_failure(turns: list[dict[str, str]]) -> str | None:
    """The flawed decision a failed transcript shows, read from the text alone."""
    said = [i for i, t in enumerate(turns) if t["role"] == "assistant"]
    last = said[-1]
    text, before = turns[last]["text"], turns[last - 1]
    if not any(a.intent == "bye" for a in parse_agent(text)):
        return None
    if before["role"] == "tool" and before["text"].startswith("[result] book failed"):
        return "close_after_booking"
    state = track([Turn(t["role"], t["text"]) for t in turns[:last]])
    if any(a.intent == "reject" for a in state.user_acts):
        searches = [
            parse_kv(turns[i]["text"]) for i in said if turns[i]["text"].startswith("[search]")
        ]
        return "drop_constraint" if "price" not in searches[0] and "price" in state.query else None
    told = track([Turn(t["role"], t["text"]) for t in turns[: last + 1]]).told_facts
    return "neglect_fact" if state.requested - told else None


def test_published_test_episodes_copy_right_and_fail_only_by_its_flaws():
    from baselines.diagnose import unseen_venues
    from leaderboard.results import read_results

    counts = unseen_venues(PUBLISHED)
    assert (
        counts["episodes"] == 500 and counts["failed"] == 270
    )  # 0.54: test goals are unseen combinations
    assert counts["failed_naming_unseen"] == counts["succeeded_naming_unseen"] == 0
    episodes = read_results(PUBLISHED)["episodes"]
    assert all(copy_errors(e["turns"]) == [] for e in episodes)
    flaws = [_flaw_of_failure(e["turns"]) for e in episodes if not e["success"]]
    assert None not in flaws and set(flaws) == set(FLAWS)


def test_in_the_act_interface_only_the_failed_booking_goodbye_remains():
    from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS, realize

    env = gym.make("Dialog-v1", split="train", user_model="template")
    agent = CarelessExpert(Carelessness(1.0, 1.0, 1.0))
    taken = []
    for seed in range(60):
        obs, _ = env.reset(seed=seed)
        agent.reset(seed=seed)
        done = False
        while not done:  # what Dialog-Acts-v1 sends for an act id: the realizer's text
            message = realize(ASSISTANT_ACTS[agent.act_id(obs)], track(obs))
            obs, _, terminated, truncated, _ = env.step(message)
            done = terminated or truncated
        taken += [d.what for d in agent.decisions]
    assert taken and set(taken) == {"goodbye after a failed booking"}


def test_dialog_bench_run_plays_it_on_the_booking_board_only():
    from leaderboard.run import shipped_runs

    assert [e for b, e in shipped_runs() if b == "careless-expert"] == ["Dialog-v1"]
