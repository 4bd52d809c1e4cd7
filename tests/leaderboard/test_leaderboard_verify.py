"""Replay verification: every way to tamper with a real results file is rejected, in one
line, and nothing is stored; the untouched file is accepted."""

from __future__ import annotations

import json
import os

import pytest
from leaderboard_helpers import SHORT, real_results, write_json

from leaderboard.episodes import get_episode_set
from leaderboard.results import MAX_RESULTS_BYTES, ResultsRejected
from leaderboard.store import LeaderboardStore
from leaderboard.submit import submit_results_file


def _index(turns: list[dict], role: str, nth: int = 0) -> int:
    return [i for i, t in enumerate(turns) if t["role"] == role][nth]


def _first_ep(r: dict) -> dict:
    return r["episodes"][0]


def change_user_turn(r):
    ep = _first_ep(r)
    ep["turns"][_index(ep["turns"], "user", 1)]["text"] += " Please hurry."


def change_opening_user_turn(r):
    _first_ep(r)["turns"][0]["text"] = "I want a pizza place in the north."


def change_agent_turn_to_what_the_env_would_not_record(r):
    ep = _first_ep(r)
    ep["turns"][_index(ep["turns"], "assistant", 0)]["text"] += "\u0007"  # a control char


def change_agent_turn_to_another_message(r):
    ep = _first_ep(r)
    ep["turns"][_index(ep["turns"], "assistant", 0)]["text"] = "Goodbye!"


def change_tool_call(r):
    ep = _first_ep(r)
    i = _index(ep["turns"], "tool", 0) - 1
    ep["turns"][i]["text"] = "[search] food=italian"


def change_tool_result(r):
    ep = _first_ep(r)
    ep["turns"][_index(ep["turns"], "tool", 0)]["text"] = "[result] search: 0 found"


def change_turn_role(r):
    ep = _first_ep(r)
    ep["turns"][_index(ep["turns"], "tool", 0)]["role"] = "user"


def drop_last_turns(r):
    ep = _first_ep(r)
    del ep["turns"][-2:]


def add_turn_after_end(r):
    _first_ep(r)["turns"] += [{"role": "assistant", "text": "Anything else?"}]


def change_reward(r):
    _first_ep(r)["rewards"][0] = 0.5


def drop_reward(r):
    _first_ep(r)["rewards"].pop()


def change_return(r):
    _first_ep(r)["return"] += 1.0


def change_success(r):
    _first_ep(r)["success"] = not _first_ep(r)["success"]


def change_terminated(r):
    _first_ep(r)["terminated"] = False


def change_metric(r):
    _first_ep(r)["metrics"]["inform_f1"] = 0.5


def change_metric_type(r):
    _first_ep(r)["metrics"]["success"] = 1  # a bool metric written as a number


def drop_metric(r):
    del _first_ep(r)["metrics"]["tool_calls"]


def add_metric(r):
    _first_ep(r)["metrics"]["politeness"] = 1.0


def drop_episode(r):
    r["episodes"].pop(2)


def duplicate_episode(r):
    r["episodes"][1] = json.loads(json.dumps(r["episodes"][0]))


def foreign_seed(r):
    r["episodes"][0]["seed"] = 7  # a training-range seed


def dev_seed(r):
    r["episodes"][0]["seed"] = get_episode_set("Dialog-v1", "dev").seeds[0]


def extra_episode(r):
    extra = json.loads(json.dumps(r["episodes"][0]))
    extra["seed"] = get_episode_set("Dialog-v1", "test").seeds[SHORT]  # just past the prefix
    r["episodes"].append(extra)


def wrong_env_version_number(r):
    r["header"]["env_version"] = 2


def unregistered_env_version(r):
    r["header"]["env_id"] = "Dialog-v0"
    r["header"]["env_version"] = 0
    r["header"]["episode_set"] = f"Dialog-v0/test[:{SHORT}]"


def wrong_episode_set_hash(r):
    r["header"]["episode_set_sha256"] = "ab" * 32


def claims_the_full_set(r):
    r["header"]["episode_set"] = "Dialog-v1/test"
    r["header"]["episode_set_sha256"] = get_episode_set("Dialog-v1", "test").sha256


def set_of_another_env(r):
    r["header"]["episode_set"] = f"Dialog-Acts-v1/test[:{SHORT}]"


TAMPERS = [
    (change_user_turn, r"user turn 2 differs from the replay"),
    (change_opening_user_turn, r"user turn 0 differs from the replay"),
    (change_agent_turn_to_what_the_env_would_not_record, r"agent turn 1 differs"),
    (change_agent_turn_to_another_message, r"differs from the replay|episode ended"),
    (change_tool_call, r"tool result \d+ differs from the replay"),
    (change_tool_result, r"tool result \d+ differs from the replay"),
    (change_turn_role, r"turn \d+ is a user turn but the replay has a tool result"),
    (drop_last_turns, r"stops after \d+ steps, before the episode ended"),
    (add_turn_after_end, r"episode ended at turn \d+ but the submission has 1 more turns"),
    (change_reward, r"reward of step 0 is 0\.5, the replay gives -0\.02"),
    (drop_reward, r"\d+ rewards for \d+ steps"),
    (change_return, r"return is .*, the replay gives"),
    (change_success, r"success is False, the replay gives True"),
    (change_terminated, r"terminated is False, the replay gives True"),
    (change_metric, r"metric inform_f1 is 0\.5, the replay gives 1\.0"),
    (change_metric_type, r"metric success is 1, the replay gives True"),
    (drop_metric, r"metric 'tool_calls' is missing"),
    (add_metric, r"metric 'politeness' is not one the env reports"),
    (drop_episode, r"missing 1 of the 6 episodes of Dialog-v1/test\[:6\]"),
    (duplicate_episode, r"duplicate seed \d+ \(episodes 0 and 1\)"),
    (foreign_seed, r"foreign seed 7 \(episode 0\): not in episode set"),
    (dev_seed, r"foreign seed \d+ \(episode 0\)"),
    (extra_episode, r"extra episode: seed \d+ \(episode 6\) is in Dialog-v1/test but not in"),
    (wrong_env_version_number, r"wrong env version: header says env_version 2"),
    (unregistered_env_version, r"wrong env version: Dialog-v0 is not registered here"),
    (wrong_episode_set_hash, r"episode-set hash mismatch for Dialog-v1/test\[:6\]"),
    (claims_the_full_set, r"missing 494 of the 500 episodes"),
    (set_of_another_env, r"belongs to Dialog-Acts-v1, not to the header's env_id"),
]


@pytest.fixture
def store(tmp_path):
    return LeaderboardStore(tmp_path / "lb.sqlite")


def test_untouched_results_are_accepted(tmp_path, store):
    path = write_json(tmp_path / "r.json", real_results())
    outcome = submit_results_file(path, store)
    assert outcome.episodes == SHORT and outcome.episode_set == f"Dialog-v1/test[:{SHORT}]"
    (entry,) = store.entries()
    assert entry.seeds == tuple(sorted(get_episode_set("Dialog-v1", "test", limit=SHORT).seeds))


def test_accepted_numbers_are_the_replays(tmp_path, store):
    results = real_results("random")
    path = write_json(tmp_path / "r.json", results)
    submit_results_file(path, store)
    (entry,) = store.entries()
    by_seed = {ep["seed"]: ep for ep in results["episodes"]}
    assert entry.returns == tuple(by_seed[s]["return"] for s in entry.seeds)
    assert entry.steps == tuple(len(by_seed[s]["rewards"]) for s in entry.seeds)


@pytest.mark.parametrize("tamper, reason", TAMPERS, ids=[t.__name__ for t, _ in TAMPERS])
def test_tampered_results_are_rejected_and_nothing_stored(tmp_path, store, tamper, reason):
    results = real_results()
    tamper(results)
    path = write_json(tmp_path / "tampered.json", results)
    with pytest.raises(ResultsRejected, match=reason) as err:
        submit_results_file(path, store)
    assert "\n" not in str(err.value)
    assert store.count() == 0


def test_floats_agree_to_the_replay_tolerance_and_no_further(tmp_path, store):
    """A learned reward model's scores differ in their last bits across CPUs, so floats
    are compared to ``REPLAY_TOLERANCE``: a reward within it is accepted (the replay's
    number is what is stored), one ten times past it is rejected."""
    from leaderboard.verify import REPLAY_TOLERANCE

    for offset, accepted in ((0.1 * REPLAY_TOLERANCE, True), (10 * REPLAY_TOLERANCE, False)):
        results = real_results()
        first = _first_ep(results)
        replayed_return = first["return"]  # the untouched file's, which the env gives
        first["rewards"][0] += offset
        first["return"] += offset
        path = write_json(tmp_path / f"r{offset}.json", results)
        if accepted:
            submit_results_file(path, store)
            (entry,) = store.entries()
            assert entry.returns[entry.seeds.index(first["seed"])] == replayed_return
        else:
            with pytest.raises(ResultsRejected, match="reward of step 0 is"):
                submit_results_file(path, store, replace=True)


MALFORMED = [
    (b'{"header": {', r"malformed JSON: .* at line 1 column 13"),
    (b"\xff\xfe not utf-8", r"malformed JSON: not UTF-8"),
    (b'{"header": {}, "header": {}, "episodes": []}', r"malformed JSON: duplicate key 'header'"),
    (b'{"x": NaN}', r"malformed JSON: NaN is not a JSON number"),
    (b"[" * 5000 + b"]" * 5000, r"malformed JSON: nested deeper than"),
    (b"[]", r"does not follow the results schema at \(top level\)"),
]


@pytest.mark.parametrize("data, reason", MALFORMED, ids=[r for _, r in MALFORMED])
def test_malformed_files_are_rejected(tmp_path, store, data, reason):
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(ResultsRejected, match=reason):
        submit_results_file(path, store)
    assert store.count() == 0


def _drop_rewards(r):
    del r["episodes"][0]["rewards"]


def _add_field(r):
    r["episodes"][0]["score"] = 1.0


def _seed_as_string(r):
    r["episodes"][0]["seed"] = "123"


def _unknown_paradigm(r):
    r["header"]["paradigm"] = "magic"


def _bad_role(r):
    r["episodes"][0]["turns"][0]["role"] = "system"


SCHEMA_BREAKS = [
    (_drop_rewards, r"at episodes/0: 'rewards' is a required property"),
    (_add_field, r"at episodes/0: Additional properties are not allowed \('score'"),
    (_seed_as_string, r"at episodes/0/seed: '123' is not of type 'integer'"),
    (_unknown_paradigm, r"at header/paradigm: 'magic' is not one of"),
    (_bad_role, r"at episodes/0/turns/0/role: 'system' is not one of"),
]


@pytest.mark.parametrize(
    "tamper, reason", SCHEMA_BREAKS, ids=[t.__name__ for t, _ in SCHEMA_BREAKS]
)
def test_schema_violations_are_rejected(tmp_path, store, tamper, reason):
    results = real_results()
    tamper(results)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(results))
    with pytest.raises(ResultsRejected, match=reason):
        submit_results_file(path, store)
    assert store.count() == 0


def test_a_file_over_the_size_limit_is_rejected_unread(tmp_path, store):
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # sparse: costs no disk and no time
        fh.truncate(MAX_RESULTS_BYTES + 1)
    with pytest.raises(ResultsRejected, match=r"over the limit of 67108864 bytes"):
        submit_results_file(path, store)
    assert store.count() == 0


def test_the_size_limit_applies_to_real_files_too(tmp_path, store):
    path = write_json(tmp_path / "r.json", real_results())
    size = os.path.getsize(path)
    with pytest.raises(ResultsRejected, match=f"results file is {size} bytes, over the limit"):
        submit_results_file(path, store, max_bytes=size - 1)
    assert store.count() == 0


def test_a_missing_file_is_a_rejection(tmp_path, store):
    with pytest.raises(ResultsRejected, match="no such results file"):
        submit_results_file(tmp_path / "nope.json", store)


def test_nothing_in_a_submission_is_executed(tmp_path, store):
    """A pickle-looking or code-looking payload is just text: it is never run."""
    marker = tmp_path / "pwned"
    results = real_results()
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    results["header"]["agent"] = "evil"
    results["episodes"][0]["metrics"]["voice_fallbacks"] = payload
    path = write_json(tmp_path / "r.json", results)
    with pytest.raises(ResultsRejected, match="metric voice_fallbacks"):
        submit_results_file(path, store)
    assert not marker.exists()
