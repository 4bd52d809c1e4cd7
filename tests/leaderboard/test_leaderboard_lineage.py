"""The verdict by lineage (issue 26) and what "verified" covers (issue 30).

A lineage is one demonstrator's demos and every row trained from them; the board's
SFT-vs-RL verdicts compare rows of one lineage, tied by the weights hash of the RL row's
start, and a comparison across lineages is shown only as such. A row the board played
has its weights, interface, env and episodes checked; its paradigm, budget and data are
its manifest's word. Synthetic entries with given provenance test the pairing; the
shipped checkpoints and a relabelled copy of one test the reading of real manifests.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
from leaderboard_helpers import stored_entry

from agents import shipped_checkpoints
from dialog_env.lm.model_files import directory_sha256
from leaderboard.lineage import Provenance, read_provenance
from leaderboard.render import COLUMNS, render, render_markdown, render_table
from leaderboard.standings import compute_standings
from leaderboard.stats import paired_difference

N = 300
DEMOS = "d" * 64  # the careless demonstrator's demos
OTHER = "e" * 64  # another demonstrator's


def _outcomes(rate: float) -> list[bool]:
    base = np.random.default_rng(7).random(N)  # shared difficulty: what pairing exploits
    return list(base < rate)


def _entry(name: str, paradigm: str, rate: float, interface: str = "text"):
    return stored_entry(name, paradigm, _outcomes(rate), interface=interface)


LINEAGE = {
    "sft-c": Provenance("w-sft", data_sha256=DEMOS, generators=("careless-expert",)),
    "fsft-c": Provenance(
        "w-fsft", data_sha256=DEMOS, generators=("careless-expert",), filtered=True
    ),
    "grpo-c": Provenance("w-grpo", init="runs/sft-c", init_weights_sha256="w-sft"),
    "rl-fc": Provenance("w-rlf", init="runs/fsft-c", init_weights_sha256="w-fsft"),
    # another lineage, better than all of the above, and an RL row whose start is retired
    "sft-x": Provenance("w-sftx", data_sha256=OTHER, generators=("expert",)),
    "ppo-x": Provenance("w-ppox", init="ckpt/sft-x", init_weights_sha256="w-retired"),
}
ENTRIES = [
    _entry("sft-c", "sft", 0.50),
    _entry("fsft-c", "filtered-sft", 0.55),
    _entry("grpo-c", "sft-rl", 0.70, "token"),
    _entry("rl-fc", "sft-rl", 0.60, "token"),
    _entry("sft-x", "sft", 0.95),
    _entry("ppo-x", "sft-rl", 0.90, "token"),
]


@pytest.fixture(scope="module")
def board():
    (s,) = compute_standings(ENTRIES, provenance=LINEAGE)
    return s


def test_the_lineage_verdict_picks_the_pairs_of_one_lineage(board):
    pairs = [(p.kind, p.rl, p.sft) for p in board.lineage_pairs]
    assert pairs == [
        ("start", "grpo-c", "sft-c"),  # SFT->RL vs its SFT start
        ("filtered", "grpo-c", "fsft-c"),  # RL vs filtered SFT on the same demos
        ("start", "rl-fc", "fsft-c"),  # RL from the filtered row vs that row
    ]
    raw = {e.name: e for e in ENTRIES}
    first = board.lineage_pairs[0]
    assert first.difference == paired_difference(
        np.asarray(raw["grpo-c"].successes, float), np.asarray(raw["sft-c"].successes, float)
    )
    assert first.difference.low > 0 and first.episodes == N
    assert first.lineage == "demos of careless-expert (data dddddddd)"
    # the headline is the lineage verdicts, in that order, each saying what it rests on
    assert board.verdicts[: len(pairs)] == [p.verdict for p in board.lineage_pairs]
    assert board.verdicts[0].startswith(
        "SFT->RL vs its SFT start, demos of careless-expert (data dddddddd): grpo-c vs sft-c "
        f"on {N} paired episodes: success difference (RL - SFT) "
    )
    assert "Checked: grpo-c starts from sft-c's weights (hash)" in board.verdicts[0]
    assert board.verdicts[0].endswith("declared (the manifests' word): paradigms, budgets.")
    assert "that the demos are the same" in board.lineage_pairs[1].verdict
    by_name = {e.name: e for e in board.entries}
    assert by_name["grpo-c"].start == "sft-c" and "start" in by_name["grpo-c"].checked
    assert by_name["ppo-x"].start is None and "start" not in by_name["ppo-x"].checked
    assert by_name["rl-fc"].lineage == by_name["sft-c"].lineage


def test_a_cross_lineage_pair_is_never_a_verdict(board):
    """Best RL (ppo-x, from a retired start) vs best SFT (sft-x, other demos) is shown
    after the verdicts, labelled as across lineages; it is never a lineage pair."""
    assert all("ppo-x" not in (p.rl, p.sft) and "sft-x" != p.sft for p in board.lineage_pairs)
    assert (board.comparison.rl, board.comparison.sft) == ("ppo-x", "sft-x")
    across = board.comparison.verdict
    assert across.startswith("Across lineages, not a verdict")
    assert board.verdicts.index(across) == len(board.lineage_pairs)


def test_a_board_without_a_lineage_pair_says_so():
    entries = [e for e in ENTRIES if e.name in ("sft-x", "ppo-x", "sft-c")]
    (s,) = compute_standings(entries, provenance=LINEAGE)
    assert s.lineage_pairs == []
    assert s.verdicts[0] == (
        "No lineage verdict: no RL row on the board starts from an SFT row on the board "
        "(ppo-x starts from weights w-retire, not those of any row on the board)."
    )
    assert s.verdicts[1].startswith("Across lineages, not a verdict")
    data = json.loads(render([s], "json"))["sets"][0]
    assert data["lineage_verdicts"] == [] and data["no_lineage_pair"] == s.verdicts[0]
    assert data["sft_vs_rl"]["across_lineages"] is True


def test_a_filtered_row_of_other_demos_is_no_pair():
    other = {**LINEAGE, "fsft-c": dataclasses.replace(LINEAGE["fsft-c"], data_sha256=OTHER)}
    entries = [e for e in ENTRIES if e.name in ("sft-c", "fsft-c", "grpo-c")]
    (s,) = compute_standings(entries, provenance=other)
    assert [(p.kind, p.rl, p.sft) for p in s.lineage_pairs] == [("start", "grpo-c", "sft-c")]


def test_a_replayed_results_file_is_never_tied_into_a_lineage():
    """A results file's model hash and paradigm are the submitter's word: no provenance
    is read for it, so it starts from nothing the board checked."""
    entries = [
        _entry("sft-c", "sft", 0.5),
        dataclasses.replace(_entry("grpo-c", "sft-rl", 0.7), labels="declared"),
    ]
    (s,) = compute_standings(entries, provenance=LINEAGE)
    assert s.lineage_pairs == [] and s.entries[0].checked == ("env", "episodes")


def test_shipped_manifests_tie_rl_chat_to_sft_chat_and_not_ppo_base_to_any_row():
    """rl-chat's init weights are sft-chat's; ppo-base's start is the base LM, whose
    manifest records no weights hash: it is tied to no row, so no verdict pair."""
    shipped = shipped_checkpoints()
    names = ("sft-chat", "rl-chat", "sft-expert", "ppo-base", "sft-noisy", "sft-filtered")
    prov = {name: read_provenance(shipped[name], directory_sha256(shipped[name])) for name in names}
    assert prov["rl-chat"].init_weights_sha256 == prov["sft-chat"].weights_sha256
    assert prov["ppo-base"].init is not None and prov["ppo-base"].init_weights_sha256 is None
    assert "ppo-sft" not in shipped  # retired: its start (weights 793045ca...) was not on the board
    assert prov["sft-noisy"].data_sha256 == prov["sft-filtered"].data_sha256
    assert prov["sft-filtered"].filtered and not prov["sft-noisy"].filtered
    assert prov["sft-noisy"].generators == ("noisy-expert",)
    assert read_provenance(shipped["sft-chat"], "0" * 64).weights_sha256 is None


def test_the_new_manifest_vocabulary_is_read(tmp_path):
    """kit's manifests: ``init`` an object with its weights hash, ``data_sha256`` a list."""
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "init": {"name": "sft-c", "weights_sha256": "w-sft"},
                "data_sha256": ["b" * 64, "a" * 64],
                "budget": {"trained_tokens": 10, "sampled_tokens": 5, "start_budget": {}},
            }
        )
    )
    p = read_provenance(tmp_path, directory_sha256(tmp_path))
    assert (p.init, p.init_weights_sha256) == ("sft-c", "w-sft")
    assert p.data_sha256 == "a" * 64 + "," + "b" * 64


def test_a_relabelled_copy_of_sft_expert_is_no_rl_row(tmp_path):
    """Issue 30: copy sft-expert, set ``"paradigm": "rl"`` in its config and a budget of env
    steps in its manifest, and the board played it: the paradigm is shown as declared,
    the row is flagged as sft-expert's very weights, and no verdict calls it RL vs SFT."""
    original = shipped_checkpoints()["sft-expert"]
    copy = shutil.copytree(original, tmp_path / "sft-expert-rl")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "paradigm": "rl"}))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["budget"] = {"env_steps": 1000}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    outcomes = _outcomes(0.99)
    entries = [
        dataclasses.replace(
            stored_entry("sft-expert", "sft", outcomes), model_sha256=directory_sha256(original)
        ),
        dataclasses.replace(
            stored_entry("sft-expert-rl", "rl", outcomes, budget={"env_steps": 1000}),
            model_sha256=directory_sha256(copy),
        ),
        _entry("sft-b", "sft", 0.4),
    ]
    checkpoints = {"sft-expert": original, "sft-expert-rl": copy}
    (s,) = compute_standings(entries, checkpoints=checkpoints)
    by_name = {e.name: e for e in s.entries}
    fake = by_name["sft-expert-rl"]
    assert "paradigm" in fake.declared and "paradigm" not in fake.checked
    assert fake.same_weights_as == ("sft-expert",)
    assert by_name["sft-expert"].same_weights_as == ("sft-expert-rl",)
    assert s.lineage_pairs == [] and s.comparison.rl is None
    assert s.comparison.twins == ("sft-expert-rl",)
    for verdict in s.verdicts:
        assert not re.search(r"(best )?RL sft-expert-rl", verdict)
    lines = render_markdown([s]).splitlines()
    md = {r.split(" | ")[1]: r.split(" | ") for r in lines if r.startswith("| ")}
    row = md["sft-expert-rl"]
    assert row[COLUMNS.index("checked")] == "played by the board; same weights as sft-expert"
    assert row[COLUMNS.index("declared")] == "paradigm, budget, data"
    assert "played by the board; same weights as sft-expert" in render_table([s], width=10_000)


def test_two_played_checkpoints_of_one_model_hash_are_flagged():
    """A byte-identical copy submitted under another name, with no manifest at hand: the
    model hash the board computed is the same, so the rows are flagged."""
    a = dataclasses.replace(
        stored_entry("sft-a", "sft", _outcomes(0.5), budget={"tokens": 9}), model_sha256="m" * 64
    )
    b = dataclasses.replace(
        stored_entry("rl-a", "rl", _outcomes(0.5), budget={"env_steps": 9}), model_sha256="m" * 64
    )
    (s,) = compute_standings([a, b], provenance={})
    assert {e.name: e.same_weights_as for e in s.entries} == {
        "sft-a": ("rl-a",),
        "rl-a": ("sft-a",),
    }
    assert s.comparison.rl is None and s.comparison.twins == ("rl-a",)
