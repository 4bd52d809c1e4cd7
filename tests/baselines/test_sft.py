"""SFT: a smoke run of the trainer, its checkpoint round trip, and the copy diagnostics."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import REPO_ROOT
from hypothesis import given
from hypothesis import strategies as st

from agents import agent_tasks, load_agent
from baselines.demos import generate_demos, load_demos, write_demos
from baselines.diagnose import diagnose, format_table
from baselines.sft import SFTConfig, train_sft, value_token_ids
from baselines.sft_probes import message_copy_accuracy, tool_call_slot_accuracy
from baselines.train import rebuild_differences
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.lm.codec import MessageCodec, join_codes, spell_codes
from dialog_env.lm.loading import load_causal_lm
from dialog_env.text import Turn, format_transcript

REPO = REPO_ROOT


@pytest.fixture(scope="module")
def expert_demos(tmp_path_factory):
    records, meta = generate_demos(
        "expert", range(40), batch_size=8, progress=False, user_model="template"
    )
    path = tmp_path_factory.mktemp("demos") / "expert.jsonl"
    write_demos(path, records, meta, "test")
    return path


@pytest.fixture(scope="module")
def sft_checkpoint(expert_demos, tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("ckpt") / "sft-smoke"
    config = SFTConfig(
        demos=[expert_demos],
        steps=3,
        batch_size=2,
        eval_every=3,
        eval_episodes=2,
        heldout=4,
        out=out,
        logdir=tmp_path_factory.mktemp("runs"),
        progress=False,
    )
    return train_sft(config)


class Oracle:
    """Answers each gold context with the demo's own next assistant message, optionally
    rewritten; a stand-in for an agent whose copying we know."""

    interface = "text"

    def __init__(self, demos: list[dict], rewrite=lambda text: text):
        self.replies = {}
        for demo in demos:
            turns = [Turn(t["role"], t["text"]) for t in demo["turns"]]
            for k, turn in enumerate(turns):
                if turn.role == "assistant":
                    self.replies[format_transcript(turns[:k])] = rewrite(turn.text)

    def act_batch(self, observations):
        return [self.replies[o] for o in observations]


def garble_refs(text: str) -> str:
    """``text`` with one wrong character in every booking reference."""
    return re.sub(
        r"\b([A-Z0-9]{7})([A-Z0-9])\b", lambda m: m[1] + ("Q" if m[2] != "Q" else "R"), text
    )


def _demos(path) -> list[dict]:
    return list(load_demos(path)[0])


def test_copy_accuracy_is_one_for_the_gold_replies_and_zero_for_garbled_refs(expert_demos):
    demos = _demos(expert_demos)
    exact = message_copy_accuracy(Oracle(demos), demos)
    assert set(exact) == {"address", "name", "phone", "postcode", "ref"}
    assert all(v == 1.0 for v in exact.values())
    assert all(v == 1.0 for v in tool_call_slot_accuracy(Oracle(demos), demos).values())

    garbled = message_copy_accuracy(Oracle(demos, garble_refs), demos)
    assert garbled["ref"] == 0.0
    assert garbled["name"] == garbled["phone"] == 1.0


def test_sft_smoke_run_changes_the_model_and_keeps_values_apart(sft_checkpoint):
    base = load_causal_lm(TINY_MODEL_DIR).model
    tuned = load_causal_lm(sft_checkpoint / "lm").model
    changed = [
        name
        for (name, a), (_, b) in zip(
            base.state_dict().items(), tuned.state_dict().items(), strict=True
        )
        if not torch.equal(a, b)
    ]
    assert len(changed) > len(base.state_dict()) // 2
    # The slot values' rows stay the orthogonal, frozen ones (the weekday collapse).
    tokenizer = load_causal_lm(sft_checkpoint / "lm").tokenizer
    ids = [i for pair in value_token_ids(tokenizer) for i in pair if i is not None]
    rows = torch.nn.functional.normalize(tuned.get_input_embeddings().weight[ids], dim=-1)
    assert (
        torch.nn.functional.normalize(base.get_input_embeddings().weight[ids], dim=-1)
        .ne(rows)
        .any()
    )
    days = [tokenizer.encode(f" {d}", add_special_tokens=False)[-1] for d in ("monday", "friday")]
    e = torch.nn.functional.normalize(tuned.get_input_embeddings().weight[days], dim=-1)
    # a_monday + u/2 against a_friday + u/2, with a_monday, a_friday, u orthonormal
    assert float(e[0] @ e[1]) == pytest.approx(0.25 / 1.25, abs=1e-4)


def test_sft_checkpoint_round_trip_and_manifest(sft_checkpoint, expert_demos):
    manifest = json.loads((sft_checkpoint / "manifest.json").read_text())
    assert rebuild_differences(manifest) == {}  # its command rebuilds its config
    assert manifest["budget"]["demo_episodes"] == 36 and manifest["kept_step"] == 3
    assert manifest["keep_rule"] == "dev-board-metric-then-return"
    assert set(manifest["heldout_copy_accuracy"]) <= {"address", "name", "phone", "postcode", "ref"}
    assert "book.day" in manifest["heldout_slot_accuracy"]
    # The learning curve: one point per evaluation, against the budget spent by then.
    (point,) = manifest["curve"]
    assert point["step"] == 3 and point["tokens"] == manifest["budget"]["tokens"] > 0
    assert [point["dev_success"], point["dev_return"]] == manifest["kept_score"]
    assert 0 < point["demo_episodes_seen"]
    a, b = load_agent(sft_checkpoint), load_agent(sft_checkpoint)
    assert (a.paradigm, a.interface) == ("sft", "text")
    contexts = list(Oracle(_demos(expert_demos)[:3]).replies)[:6]
    assert a.act_batch(contexts) == b.act_batch(contexts)


def test_diagnose_scores_every_slot_of_every_agent(expert_demos, monkeypatch):
    """Agents whose copying we know: the gold replies score 1 everywhere, the same
    replies with one wrong character per reference score 0 on ``ref`` only, and the
    table shows those figures in their rows."""
    demos = _demos(expert_demos)
    agents = {"gold": Oracle(demos), "garbled": Oracle(demos, garble_refs)}
    monkeypatch.setattr("agents.load_agent", agents.__getitem__)
    results = diagnose(["gold", "garbled"], expert_demos)
    fields = {"address", "name", "phone", "postcode", "ref"}
    assert results["gold"]["message"] == dict.fromkeys(sorted(fields), 1.0)
    assert results["garbled"]["message"] == {**dict.fromkeys(sorted(fields), 1.0), "ref": 0.0}
    slots = results["gold"]["tool_call"]
    assert {"search.food", "search.area", "book.day", "book.time", "book.people"} <= set(slots)
    assert set(slots.values()) == {1.0} and results["garbled"]["tool_call"] == slots
    rows = {}
    for line in format_table(results).splitlines()[2:]:
        kind, key, *cells = line.replace("tool call", "tool_call").split()
        rows[kind, key] = cells
    assert rows["message", "ref"] == ["1.000", "0.000"]
    assert rows["message", "phone"] == rows["tool_call", "book.day"] == ["1.000", "1.000"]
    assert len(rows) == len(slots) + len(fields)


def test_diagnose_of_a_checkpoint_is_its_teacher_forced_accuracy(sft_checkpoint, expert_demos):
    demos = _demos(expert_demos)[:3]
    results = diagnose([str(sft_checkpoint)], expert_demos, limit=3)
    agent = load_agent(sft_checkpoint)
    assert results == {
        str(sft_checkpoint): {
            "tool_call": tool_call_slot_accuracy(agent, demos),
            "message": message_copy_accuracy(agent, demos),
        }
    }
    with pytest.raises(ValueError, match="writes text"):
        diagnose([str(REPO / "baselines/checkpoints/sb3-ppo")], expert_demos, limit=1)


CODES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=8).filter(
    lambda c: any(ch.isdigit() for ch in c) and any(ch.isalpha() for ch in c)
)


@given(
    code=CODES,
    lead=st.sampled_from(["ref=", "is ", "(", ""]),
    tail=st.sampled_from([".", "", " ok"]),
)
def test_spelled_codes_round_trip(code, lead, tail):
    text = f"{lead}{code}{tail}"
    spelled = spell_codes(text)
    assert code not in spelled and " ".join(code) in spelled
    glue = " " if lead and not lead.endswith(" ") else ""  # a spelled code starts a word
    assert join_codes(spelled) == f"{lead}{glue}{code}{tail}"


def test_plain_text_is_left_alone_by_the_code_speller():
    for text in (
        'phone="01223 764182" postcode="cb1 5zp"',
        "A B C",
        "ABCDEFGH",
        "12345678",
        "x" * 50,
    ):
        assert spell_codes(text) == text and join_codes(text) == text


def test_a_spelled_code_is_the_same_tokens_in_a_result_and_in_a_sentence():
    tokenizer = load_causal_lm(TINY_MODEL_DIR).tokenizer
    codec = MessageCodec(tokenizer, spell_codes=True)
    result = codec.message_ids('[result] book ok: name="The Jade Griddle" ref=P4AZLEB4')
    said = codec.message_ids("The reference number is P4AZLEB4.")
    code = codec.message_ids("P4AZLEB4")
    assert result[-len(code) :] == code and said[-len(code) - 1 : -1] == code
    assert codec.decode_message(said) == "The reference number is P4AZLEB4."
    plain = MessageCodec(tokenizer)
    bare = plain.message_ids("WYN6EUZ5")  # unspelled: other pieces after "=" than after " "
    assert plain.message_ids("ref=WYN6EUZ5")[-len(bare) :] != bare


def test_token_policy_keeps_spelled_codes_through_a_checkpoint(tmp_path):
    from baselines.common.policy import TokenPolicy

    lm = load_causal_lm(TINY_MODEL_DIR)
    policy = TokenPolicy(lm.model, lm.tokenizer, spell_codes=True)
    loaded = TokenPolicy.load(policy.save(tmp_path / "p", paradigm="sft-rl"))
    assert loaded.codec.spell_codes and loaded.agent().codec.spell_codes
    assert load_agent(tmp_path / "p").codec.spell_codes
    assert not TokenPolicy.load(TINY_MODEL_DIR).codec.spell_codes


def test_sft_on_the_preferred_replies_of_a_prefs_file_trains_a_chat_agent(
    tmp_path, one_torch_thread
):
    from baselines.prefs import generate_prefs, write_prefs
    from baselines.sft import preferred_demos

    pairs, meta = generate_prefs(range(12))
    path = tmp_path / "prefs.jsonl"
    write_prefs(path, pairs, meta, "test")
    demos = preferred_demos(pairs)
    assert len(demos) == len(pairs)
    preferred = {"role": "assistant", "text": pairs[0]["chosen"]}
    assert demos[0]["turns"] == [*pairs[0]["context"], preferred]
    out = train_sft(
        SFTConfig(
            demos=[path],
            env_id="Dialog-Chat-v1",
            steps=2,
            batch_size=2,
            eval_every=2,
            eval_episodes=2,
            heldout=4,
            out=tmp_path / "sft-chat",
            logdir=tmp_path / "runs",
            progress=False,
        )
    )
    config = json.loads((out / "config.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert config["env_id"] == "Dialog-Chat-v1" and agent_tasks(out) == ("chat",)
    # Selected and reported by the dev gold score, as the chat board ranks.
    assert [set(p) >= {"step", "dev_gold"} for p in manifest["curve"]] == [True]
    (point,) = manifest["curve"]
    assert 0.0 <= point["dev_gold"] <= 1.0
    assert manifest["kept_score"] == [point["dev_gold"], point["dev_return"]]  # gold ranks chat
    assert manifest["budget"]["demo_episodes"] == len(pairs) - 4
