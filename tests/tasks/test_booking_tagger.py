"""The learned slot tagger (issue 31): tags read off the voice's placeholders, the tagger's
readings, the tracker fed by it, and the refusal of a hostile tagger directory."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from baselines.tagger_data import voiced_turns
from dialog_env.lm.loading import ModelLoadError
from dialog_env.tasks.booking.acts import Act
from dialog_env.tasks.booking.parser import parse_user, user_acts
from dialog_env.tasks.booking.tagger import SHIPPED_TAGGER_DIR, SlotTagger
from dialog_env.tasks.booking.tagging import TAGS, tag_sentence, tagged_values, words
from dialog_env.tasks.booking.task import BookingTask
from dialog_env.tasks.booking.tracker import track
from dialog_env.tasks.booking.voice import delexicalize, template_text
from dialog_env.text import Turn

ACTS = [
    [Act.make("inform", area="north", food="thai")],
    [Act.make("inform", price="cheap", food="dontcare")],
    [Act.make("book", people="4", day="friday", time="19:30")],
    [Act.make("reject"), Act.make("inform", area="centre")],
    [Act.make("affirm"), Act.make("request", phone="?", postcode="?")],
]


def _values(text: str, tags: list[str]) -> dict[str, str]:
    return tagged_values([w for w, _ in words(text)], tags)


@pytest.mark.parametrize("acts", ACTS, ids=str)
def test_template_tags_round_trip_to_the_filled_values(acts):
    delexicalized, values = delexicalize(acts)
    text, tags = tag_sentence(template_text(acts), values)
    assert len(tags) == len(words(text)) and set(tags) <= set(TAGS)
    assert _values(text, tags) == values


def test_voiced_tags_round_trip_to_the_values_the_parser_reads():
    """LM-voiced turns (fallbacks included): the tagged values are the act's values, which
    the voice's check made the parser read back."""
    turns = voiced_turns(range(4))
    assert len(turns) >= 12
    for turn in turns:
        parsed = {
            s: v
            for a in parse_user(turn["text"])
            if a.intent in ("inform", "book")
            for s, v in a.slots
            if v != "dontcare"
        }
        assert _values(turn["text"], turn["tags"]) == parsed, turn


def test_a_glued_value_tags_its_word_and_a_missing_value_is_outside():
    text, tags = tag_sentence("[people]-strong party on [day] at [time]", {"people": "4"})
    assert text == "4-strong party on [day] at [time]"
    assert tags[:2] == ["B-people", "O"] and set(tags[2:]) == {"O"}


def test_the_tracker_gives_the_rule_based_state_when_fed_the_gold_tags():
    turns = voiced_turns(range(6))
    gold = {}
    for turn in turns:
        values = _values(turn["text"], turn["tags"])
        constraints = {s: v for s, v in values.items() if s in ("area", "food", "price")}
        booking = {s: v for s, v in values.items() if s not in constraints}
        gold[turn["text"]] = user_acts(turn["text"], constraints, booking)
    transcript = []
    for turn in turns:  # one long conversation of every voiced turn, with replies between
        transcript += [Turn("user", turn["text"]), Turn("assistant", "Which area?")]
        assert track(transcript, nlu=gold.__getitem__) == track(transcript)


shipped = pytest.mark.skipif(
    not (SHIPPED_TAGGER_DIR / "model.safetensors").is_file(), reason="no shipped tagger"
)


@shipped
@pytest.mark.parametrize(
    "text, expected",
    [
        ("I want thai food in the north.", {"food": "thai", "area": "north"}),
        ("Something cheap, please.", {"price": "cheap"}),
        ("A table for 3 on sunday at 18:30.", {"people": "3", "day": "sunday", "time": "18:30"}),
        (
            "Can you find me somewhere expensive that serves korean food?",
            {"price": "expensive", "food": "korean"},
        ),
        ("What is the phone number?", {}),
    ],
)
def test_the_shipped_tagger_reads_fixed_sentences(text, expected):
    tagger = SlotTagger.load()
    assert tagger.values(text) == expected
    assert tagger.read(text) == parse_user(text)


@shipped
def test_nlu_tagger_builds_the_act_state_from_the_tagger():
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    rule = gym.make("Dialog-Acts-v1", user_model="template")
    tagged = gym.make("Dialog-Acts-v1", user_model="template", nlu="tagger")
    assert tagged.unwrapped.task.new_tracker().nlu == SlotTagger.load().read
    for env in (rule, tagged):
        env.reset(seed=3)
    for act in (0, 1, 3, 7):
        a, b = rule.step(act), tagged.step(act)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
    restored = pickle.loads(pickle.dumps(tagged.unwrapped.task))
    assert restored.nlu_reader("thai food, please.") == parse_user("thai food, please.")


def test_an_unknown_nlu_is_refused_in_one_line(tmp_path):
    for nlu in ("bert", "", str(tmp_path / "none")):
        with pytest.raises(ValueError, match=r"nlu must be one of \('rule', 'tagger'\)"):
            BookingTask(nlu=nlu)


# -- hostile tagger directories ---------------------------------------------------------
def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "tagger"
    shutil.copytree(SHIPPED_TAGGER_DIR, dst)
    return dst


@shipped
def test_a_pickled_file_beside_the_weights_is_refused(tmp_path):
    directory = _copy(tmp_path)
    (directory / "training_args.bin").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelLoadError, match="holds pickled files; training_args.bin"):
        SlotTagger.load(directory)
    with pytest.raises(ModelLoadError, match="pickled"):
        BookingTask(nlu=str(directory))


@shipped
def test_corrupt_weights_and_foreign_labels_are_refused(tmp_path):
    directory = _copy(tmp_path)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        SlotTagger.load(directory)
    other = _copy(tmp_path / "b")
    config = json.loads((other / "config.json").read_text())
    config["id2label"] = {"0": "O", **{str(i): f"B-x{i}" for i in range(1, len(TAGS))}}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="not the tagger's"):
        SlotTagger.load(other)


# -- the held-out report ------------------------------------------------------------------
@shipped
def test_the_committed_report_is_of_the_shipped_tagger():
    from conftest import REPO_ROOT

    from dialog_env.lm.model_files import file_sha256

    report = json.loads((REPO_ROOT / "leaderboard" / "tagger_report.json").read_text())
    assert (
        report["command"]
        == "python -m baselines.tagger_report --out leaderboard/tagger_report.json"
    )
    assert report["tagger"]["weights_sha256"] == file_sha256(
        SHIPPED_TAGGER_DIR / "model.safetensors"
    )
    assert report["test"]["split"] == "test" and report["test"]["turns"] > 1000


@shipped
def test_the_report_scores_both_readers_on_the_same_test_turns():
    pytest.importorskip("seqeval")
    from baselines.tagger_report import heldout_report

    report = heldout_report(episodes=2)
    entities = report["test"]["entities"]
    assert entities > 0 and report["test"]["turns"] >= 4
    for part in (report, report["shifted"]):
        for reader in ("tagger", "parser"):
            assert part[reader]["entity_report"]["micro avg"]["support"] == entities
    assert report["parser"]["entity_report"]["micro avg"]["f1-score"] == 1.0  # the voice's check
