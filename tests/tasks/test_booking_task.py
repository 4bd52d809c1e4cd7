"""The booking task's parts: data, goals and split, tools, parser, voice, user."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialog_env.tasks.booking.acts import Act, canonical
from dialog_env.tasks.booking.domain import (
    AREAS,
    DAYS,
    DOMAIN_FILE,
    FOODS,
    PRICES,
    TIMES,
    load_database,
)
from dialog_env.tasks.booking.generate import generate
from dialog_env.tasks.booking.goals import GoalSampler, combination_split
from dialog_env.tasks.booking.parser import REFERENCE_RE, parse_agent, parse_user
from dialog_env.tasks.booking.tools import ToolBox, parse_search_result
from dialog_env.tasks.booking.user import AgendaUser
from dialog_env.tasks.booking.voice import TemplateVoice

DB, BOOK = load_database()


def sample_goals(split: str, n: int, seed: int = 0):
    sampler, rng = GoalSampler(DB, BOOK, split), np.random.default_rng(seed)
    return [sampler.sample(rng) for _ in range(n)]


def test_shipped_domain_is_reproducible_from_its_script():
    assert json.loads(DOMAIN_FILE.read_text()) == generate()
    assert 100 <= len(DB) <= 150


def test_test_goals_use_combinations_never_seen_in_train():
    key = lambda g: tuple(sorted(g.constraints.items()))  # noqa: E731
    train = {key(g) for g in sample_goals("train", 3000)}
    test = {key(g) for g in sample_goals("test", 1000)}
    assert train and test and not train & test
    assert all(combination_split(dict(k)) == "test" for k in test)


def test_goal_mix_has_nomatch_fallbacks_and_failing_bookings():
    goals = sample_goals("train", 2000, seed=1)
    nomatch = [g for g in goals if g.fallback]
    failing = [g for g in goals if g.alt_time]
    assert 0.05 < len(nomatch) / len(goals) < 0.3
    assert 0.02 < len(failing) / len(goals) < 0.3
    for g in nomatch:
        assert not DB.search(g.constraints) and DB.search(g.final_constraints())
    for g in goals:
        if not g.wants_booking:
            continue
        fitting = DB.search(g.final_constraints())
        free = [BOOK.free(v.name, g.day, g.time) for v in fitting]
        if g.alt_time:
            assert not any(free)
            assert all(BOOK.free(v.name, g.day, g.alt_time) for v in fitting)
        else:
            assert all(free)


def test_search_results_and_errors():
    tools = ToolBox(DB, BOOK.copy())
    rng = np.random.default_rng(0)
    query, n, shown = parse_search_result(tools.call("[search] food=thai", rng))
    assert query == {"food": "thai"} and n == len(DB.search({"food": "thai"}))
    assert all(v["food"] == "thai" for v in shown) and len(shown) == min(n, 5)
    assert "unknown food" in tools.call("[search] food=itallian", rng)
    assert "unknown slot" in tools.call("[search] colour=blue", rng)
    assert "at least one" in tools.call("[search]", rng)
    assert "unknown tool" in tools.call("[fly] to=moon", rng)
    assert tools.calls == 5


@pytest.mark.parametrize(
    "args, error",
    [
        ("people=-1 day=never", "missing"),
        ('name="Nowhere" people=2 day=friday time=19:00', "no venue"),
        ('name="{v}" people=0 day=friday time=19:00', "people"),
        ('name="{v}" people=two day=friday time=19:00', "people"),
        ('name="{v}" people=2 day=someday time=19:00', "day"),
        ('name="{v}" people=2 day=friday time=25:00', "time"),
    ],
)
def test_booking_errors(args, error):
    tools = ToolBox(DB, BOOK.copy())
    result = tools.call("[book] " + args.format(v=DB.venues[0].name), np.random.default_rng(0))
    assert result.startswith("[result] book error") and error in result
    assert not tools.bookings


def test_booking_takes_tables_until_full_and_episodes_do_not_leak():
    venue = DB.venues[0]
    day, time = next((d, t) for d in DAYS for t in TIMES if BOOK.free(venue.name, d, t) >= 2)
    tables = BOOK.free(venue.name, day, time)
    tools = ToolBox(DB, BOOK.copy())
    rng = np.random.default_rng(0)
    call = f'[book] name="{venue.name}" people=2 day={day} time={time}'
    results = [tools.call(call, rng) for _ in range(tables + 1)]
    assert all("book ok" in r for r in results[:-1]) and "book failed" in results[-1]
    refs = [REFERENCE_RE.search(r).group(0) for r in results[:-1]]
    assert len(set(refs)) == tables and set(refs) == set(tools.bookings)
    assert load_database()[1].free(venue.name, day, time) == tables  # shipped book untouched


def _user_turns():
    constraint = st.fixed_dictionaries(
        {},
        optional={
            "area": st.sampled_from(AREAS + ("dontcare",)),
            "food": st.sampled_from(FOODS + ("dontcare",)),
            "price": st.sampled_from(PRICES + ("dontcare",)),
        },
    )
    booking = st.fixed_dictionaries(
        {},
        optional={
            "people": st.integers(1, 8).map(str),
            "day": st.sampled_from(DAYS),
            "time": st.sampled_from(TIMES),
        },
    )
    facts = st.sets(st.sampled_from(["phone", "address", "postcode"]))
    lead = st.sampled_from([None, "reject", "affirm"])
    tail = st.sampled_from([None, "negate", "insist", "reqrec", "repeat"])

    def build(lead, inform, book, request, tail):
        acts = [Act(lead)] if lead else []
        acts += [Act.make("inform", **inform)] if inform else []
        acts += [Act.make("book", **book)] if book else []
        acts += [Act.make("request", **dict.fromkeys(request, "?"))] if request else []
        acts += [Act(tail)] if tail else []
        return acts or [Act("thank_bye")]

    ending = st.sampled_from([[Act("thank_bye")], [Act("giveup_bye")]])
    return st.one_of(st.builds(build, lead, constraint, booking, facts, tail), ending)


@given(_user_turns())
def test_template_voice_reads_back_as_its_acts(acts):
    text, fell_back = TemplateVoice().voice(acts, np.random.default_rng(0))
    assert not fell_back
    assert parse_user(text) == canonical(acts), text


@pytest.mark.parametrize(
    "text, intents",
    [
        (
            "I'm sorry, there is no table at The Oak Mill. Would another time work?",
            {"book_fail", "request"},
        ),
        ("I'm sorry, there is no restaurant in the north serving thai food.", {"nomatch"}),
        ("The Happy Fox is a restaurant in the east.", {"offer"}),
        ("How about The Happy Fox or The Quiet Bell?", {"list"}),
        ("Your table is booked. The reference number is AB12CD34.", {"book_ok"}),
        ("Is there anything else I can help you with? Goodbye!", {"reqmore", "bye"}),
        ("The phone number is 01223 160789 and the postcode is cb1 1eu.", {"inform"}),
        ('Here: [result] search food=thai: 1 found | name="The Happy Fox"', set()),
        ("Lovely weather today.", set()),
    ],
)
def test_agent_parser(text, intents):
    assert {a.intent for a in parse_agent(text)} == intents


@pytest.mark.parametrize("written", ["01223160789 and cb11eu", "01223 160789 and cb1 1eu"])
def test_the_user_reads_a_fact_written_without_its_space_as_the_database_writes_it(written):
    """The booking user and the chat judge read phones and postcodes with one pattern
    (dialog_env.tasks.restaurants); a fact without its space is still the venue's."""
    (inform,) = parse_agent(f"The phone is {written}.")
    assert inform.slots == (("phone", "01223 160789"), ("postcode", "cb1 1eu"))


def _user_for(goal_index: int = 0, **kwargs):
    goal = sample_goals("train", goal_index + 1, seed=3)[goal_index]
    return AgendaUser(goal, DB, {}, **kwargs), goal


def test_user_gives_up_when_patience_runs_out():
    user, _ = _user_for(patience=3)
    user.open(np.random.default_rng(0))
    replies = [user.respond(parse_agent("blah")) for _ in range(3)]
    assert replies[0] == [Act("repeat")] and replies[-1] == [Act("giveup_bye")]
    assert user.done and not user.satisfied
    with pytest.raises(RuntimeError, match="already left the conversation"):
        user.respond(())


def test_user_rejects_a_venue_that_breaks_its_constraints():
    user, goal = _user_for()
    user.open(np.random.default_rng(0))
    wrong = next(v for v in DB.venues if not v.matches(goal.constraints))
    reply = user.respond(parse_agent(f"{wrong.name} is lovely."))
    assert reply[0] == Act("reject") and reply[1].intent == "inform"
    assert user.accepted is None


def test_user_answers_questions_with_its_goal_or_dontcare():
    user, goal = _user_for()
    reply = user.respond(parse_agent("Which area, what food and what price range?"))
    informed = dict(reply[0].slots)
    assert informed == {s: goal.constraints.get(s, "dontcare") for s in ("area", "food", "price")}


def test_env_episode_uses_a_fresh_reservation_book():
    env = gym.make("Dialog-v1").unwrapped
    env.reset(seed=0)
    before = json.dumps(env.task.tools.book.tables)
    venue = DB.venues[1]
    for _ in range(5):
        env.step(f'[book] name="{venue.name}" people=2 day=monday time=19:00')
    env.reset(seed=0)
    assert json.dumps(env.task.tools.book.tables) == before


# -- venue_names="shuffled": a training distribution where names must be read ----------
def _search_names(env, seed):
    obs, _ = env.reset(seed=seed)
    goal = env.unwrapped.task.goal
    query = " ".join(f"{s}={v}" for s, v in goal.constraints.items())
    obs, *_ = env.step(f"[search] {query}")
    return goal, obs.splitlines()[-1]


def test_shuffled_venue_names_keep_the_goal_and_give_the_venues_other_names():
    shipped = gym.make("Dialog-v1", user_model="template")
    shuffled = gym.make("Dialog-v1", user_model="template", venue_names="shuffled")
    moved = 0
    for seed in range(20):
        goal_a, result_a = _search_names(shipped, seed)
        goal_b, result_b = _search_names(shuffled, seed)
        assert goal_a == goal_b  # the goal is drawn before the names are
        assert _search_names(shuffled, seed) == (goal_b, result_b)  # same seed, same episode
        moved += result_a != result_b
        task = shuffled.unwrapped.task
        assert {v.name for v in task.episode_db.venues} == {v.name for v in DB.venues}
        by_phone = {v.phone: v for v in DB.venues}
        for venue in task.episode_db.venues:  # only the names moved: the facts stay
            was = by_phone[venue.phone]
            assert (venue.area, venue.food, venue.price, venue.address, venue.postcode) == (
                was.area,
                was.food,
                was.price,
                was.address,
                was.postcode,
            )
        assert sum(v.name != by_phone[v.phone].name for v in task.episode_db.venues) > 100
    assert moved >= 18


def test_the_expert_solves_episodes_with_shuffled_venue_names():
    from agents import load_agent

    env = gym.make("Dialog-v1", user_model="template", venue_names="shuffled")
    expert = load_agent("expert")
    wins = 0
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        expert.reset(seed)
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(expert.act(obs))
            done = term or trunc
        wins += info["success"]
    assert wins == 30


def test_venue_names_must_be_known():
    with pytest.raises(ValueError, match="venue_names must be one of"):
        gym.make("Dialog-v1", user_model="template", venue_names="random")
