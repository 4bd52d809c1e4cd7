"""The gold judge's documented rules (``dialog_env.tasks.chat.judge``), on requests of real
chat goals and on arbitrary text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.chat.answers import REPLY_GENERATORS, good_reply, make_reply
from dialog_env.tasks.chat.judge import gold_terms, invented_venues
from dialog_env.tasks.chat.requests import ChatAct, sample_goal

DB, _ = load_database()
REQUESTS = list(
    dict.fromkeys(
        r for seed in range(60) for r in sample_goal(DB, np.random.default_rng(seed), "train")
    )
)
PHONES = {v.phone.replace(" ", "") for v in DB.venues}
POSTCODES = {v.postcode.replace(" ", "") for v in DB.venues}
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

requests = st.sampled_from(REQUESTS)
replies = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda g, r, s: make_reply(g, r, DB, np.random.default_rng(s)),
        st.sampled_from(sorted(REPLY_GENERATORS)),
        requests,
        st.integers(0, 2**16),
    ),
)
capitalized = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8).map(
    str.capitalize
)
invented_names = st.builds(lambda a, b: f"The {a} {b}", capitalized, capitalized).filter(
    lambda n: DB.get(n) is None
)


def _wrong_phone(digits: int) -> str:
    phone = f"01223 {digits:06d}"
    return phone if phone.replace(" ", "") not in PHONES else "01223 000000"


def test_the_good_answer_is_complete_and_correct():
    assert len(REQUESTS) > 100 and {r.intent for r in REQUESTS} == {
        "recommend",
        "describe",
        "compare",
    }
    for request in REQUESTS:
        terms = gold_terms(good_reply(request, DB.by_name), request, DB)
        assert terms["answered"] == 1.0 and terms["wrong"] == terms["invented"] == 0, request
        assert terms["gold"] >= 0.8


@HYPOTHESIS
@given(request=requests, reply=replies)
def test_scores_lie_in_the_unit_interval(request, reply):
    assert 0.0 <= gold_terms(reply, request, DB)["gold"] <= 1.0


@HYPOTHESIS
@given(request=requests, name=invented_names, before=replies, after=st.text(max_size=60))
def test_an_invented_venue_never_scores_above_a_correct_answer(request, name, before, after):
    reply = f"{before} {name} {after}"
    assert name in invented_venues(reply, DB)
    correct = gold_terms(good_reply(request, DB.by_name), request, DB)["gold"]
    invented = gold_terms(reply, request, DB)["gold"]
    assert invented <= 0.2 < correct


@HYPOTHESIS
@given(request=requests, reply=replies, digits=st.integers(0, 999_999), which=st.booleans())
def test_adding_a_wrong_fact_never_raises_the_score(request, reply, digits, which):
    wrong = f"Its phone is {_wrong_phone(digits)}" if which else "Its postcode is cb9 9zz"
    assert "cb99zz" not in POSTCODES
    before = gold_terms(reply, request, DB)
    after = gold_terms(f"{reply}. {wrong}.", request, DB)
    assert after["gold"] <= before["gold"]
    assert after["wrong"] >= before["wrong"] + 1


def test_each_wrong_fact_halves_the_content():
    request = ChatAct("describe", names=("The Amber Fig",), asks=("phone",))
    right = "Sure, the phone of The Amber Fig is 01223 764182"
    assert gold_terms(right, request, DB)["gold"] == 1.0
    once = gold_terms(right + " or 01223 111111", request, DB)
    twice = gold_terms(right + " or 01223 111111 or 01223 222222", request, DB)
    assert (once["wrong"], twice["wrong"]) == (1, 2)
    assert once["gold"] == pytest.approx(0.5) and twice["gold"] == pytest.approx(0.25)


def test_a_reply_that_answers_nothing_scores_zero_however_polite():
    request = REQUESTS[0]
    terms = gold_terms("Thank you so much, I am happy to help, please enjoy!", request, DB)
    assert terms["polite"] == 1.0 and terms["gold"] == 0.0


def test_half_an_answer_scores_half():
    request = ChatAct("compare", names=("The Amber Fig", "The Amber Cellar"), asks=("price",))
    half = "Sure! The Amber Fig is in the cheap price range."
    assert gold_terms(half, request, DB)["answered"] == 0.5


def test_a_recommendation_that_breaks_a_wish_is_wrong():
    request = ChatAct("recommend", wishes=(("food", "thai"),))
    fits = [v for v in DB.venues if v.food == "thai"][0]
    breaks = [v for v in DB.venues if v.food != "thai"][0]
    good = gold_terms(f"Sure, I recommend {fits.name}.", request, DB)
    bad = gold_terms(f"Sure, I recommend {breaks.name}.", request, DB)
    assert (good["answered"], good["wrong"]) == (1.0, 0)
    assert (bad["answered"], bad["wrong"]) == (0.0, 1) and bad["gold"] == 0.0


def test_style_moves_a_full_answer_by_at_most_a_fifth():
    request = REQUESTS[1]
    good = good_reply(request, DB.by_name)
    curt = make_reply("curt", request, DB, np.random.default_rng(0))
    verbose = make_reply("verbose", request, DB, np.random.default_rng(0))
    scores = [gold_terms(r, request, DB)["gold"] for r in (good, curt, verbose)]
    assert scores[0] == 1.0 and 0.8 <= min(scores[1:]) < 1.0


def test_only_requests_are_judged():
    with pytest.raises(ValueError, match="only a request is judged"):
        gold_terms("hello", ChatAct("thank"), DB)
