"""Episode sets: fixed, disjoint, out of the training seed range, hashed over seeds and spec."""

from __future__ import annotations

import hashlib
import inspect

import pytest

from leaderboard.episodes import (
    EPISODE_SET_SIZES,
    EVAL_SEED_FLOOR,
    canonical_json,
    episode_set_size,
    get_episode_set,
    is_evaluation_seed,
    parse_episode_set_id,
    resolved_env_spec,
    text_env_ids,
)

TEXT_IDS = text_env_ids()


@pytest.mark.parametrize("env_id", TEXT_IDS)
def test_sets_have_their_sizes_and_are_disjoint(env_id):
    dev, test = get_episode_set(env_id, "dev"), get_episode_set(env_id, "test")
    assert (len(dev), len(test)) == (EPISODE_SET_SIZES["dev"], EPISODE_SET_SIZES["test"])
    assert len(set(dev.seeds)) == 200 and len(set(test.seeds)) == 500
    assert set(dev.seeds).isdisjoint(test.seeds)


@pytest.mark.parametrize("env_id", TEXT_IDS)
def test_seeds_never_meet_training_seeds(env_id):
    seeds = get_episode_set(env_id, "dev").seeds + get_episode_set(env_id, "test").seeds
    assert all(is_evaluation_seed(s) for s in seeds)
    # Training code draws seeds below the floor: the first million of them are never used.
    assert min(seeds) >= EVAL_SEED_FLOOR and max(seeds) < 2**31


def test_seeds_come_from_the_documented_sha256_stream():
    digest = hashlib.sha256(b"dialog-bench/episode-seeds/booking/0").digest()
    first = EVAL_SEED_FLOOR + int.from_bytes(digest[:8], "big") % (2**31 - EVAL_SEED_FLOOR)
    assert get_episode_set("Dialog-v1", "dev").seeds[0] == first


def test_sets_use_held_out_goals_and_are_bound_to_the_env_spec():
    s = get_episode_set("Dialog-v1", "test")
    assert s.env_kwargs["split"] == "test"
    assert s.env_spec["version"] == 1 and s.env_spec["max_episode_steps"] == 50
    expected = hashlib.sha256(
        canonical_json({"episode_set": s.id, "seeds": list(s.seeds), "env": s.env_spec})
    ).hexdigest()
    assert s.sha256 == expected
    # Same inputs, same hash; a different set or a prefix is a different set.
    assert s.sha256 == get_episode_set("Dialog-v1", "test").sha256
    assert s.sha256 != get_episode_set("Dialog-v1", "dev").sha256
    assert s.sha256 != get_episode_set("Dialog-v1", "test", limit=10).sha256


def test_the_spec_holds_every_env_default_even_behind_a_factory_entry_point():
    import gymnasium as gym

    from dialog_env.core import DialogEnv

    spec = resolved_env_spec("Dialog-v1")
    assert spec["entry_point"] == gym.spec("Dialog-v1").entry_point
    for name, param in inspect.signature(DialogEnv).parameters.items():
        if name in ("render_mode", "device") or param.default is inspect.Parameter.empty:
            continue
        expected = "test" if name == "split" else param.default
        assert spec["kwargs"][name] == expected, name
    assert "render_mode" not in spec["kwargs"] and "device" not in spec["kwargs"]


def test_hash_changes_when_an_env_kwarg_default_changes(monkeypatch):
    import leaderboard.episodes as episodes

    before = get_episode_set("Dialog-v1", "test").sha256
    changed = dict(resolved_env_spec("Dialog-v1"))
    changed["kwargs"] = {**changed["kwargs"], "patience": 99}
    monkeypatch.setattr(episodes, "resolved_env_spec", lambda env_id: changed)
    assert get_episode_set("Dialog-v1", "test").sha256 != before


def test_prefix_sets():
    full = get_episode_set("Dialog-v1", "test")
    head = get_episode_set("Dialog-v1", "test", limit=7)
    assert head.id == "Dialog-v1/test[:7]" and head.seeds == full.seeds[:7]
    assert get_episode_set("Dialog-v1", "test", limit=500).id == "Dialog-v1/test"
    assert parse_episode_set_id(head.id) == ("Dialog-v1", "test", 7)


@pytest.mark.parametrize(
    "args, message",
    [
        (("Dialog-v1", "train"), "unknown episode set"),
        (("Dialog-v9", "test"), "not registered"),
        (("Dialog-v1", "test", 0), "limit must be"),
        (("Dialog-v1", "dev", 201), "limit must be"),
    ],
)
def test_bad_requests_are_clear_errors(args, message):
    with pytest.raises(ValueError, match=message):
        get_episode_set(*args)
    with pytest.raises(ValueError, match=message):  # counted up front, as the run does
        episode_set_size(*args)


@pytest.mark.parametrize("args", [("Dialog-v1", "test"), ("Dialog-Chat-v1", "dev", 7)])
def test_a_set_is_counted_without_building_its_env(args, monkeypatch):
    """``dialog-bench run`` sizes its progress bar before its workers start: no LM loads."""
    size = len(get_episode_set(*args))
    import leaderboard.episodes as episodes

    monkeypatch.setattr(episodes, "resolved_env_spec", _refuse)
    assert episode_set_size(*args) == size


def _refuse(env_id):
    raise AssertionError(f"the env of {env_id} was built to count its episodes")


def test_act_interface_ids_have_no_text_episode_sets():
    from dialog_env.registration import ENV_IDS

    for env_id, kwargs in ENV_IDS.items():
        if kwargs.get("interface", "text") != "text":
            with pytest.raises(ValueError, match="not a text-interface env id"):
                get_episode_set(env_id, "test")


@pytest.mark.parametrize("bad", ["Dialog-v1", "Dialog-v1/Test", "Dialog-v1/test[:0]", "a/b/c"])
def test_malformed_set_ids(bad):
    with pytest.raises(ValueError, match="malformed episode-set id"):
        parse_episode_set_id(bad)
