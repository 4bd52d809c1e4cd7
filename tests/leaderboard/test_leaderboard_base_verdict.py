"""The lineage verdict "best-of-n vs its base" (issue 27 item 6).

A best-of-n row picks among its base's samples; the board compares it with its base,
paired on the same episodes, when the base is checked: the base its config names
(resolved as ``BestOfNAgent.load`` resolves it) gives back the model hash the board played
for the best-of-n row, and its directory hash is the model hash of another row the board
played. Synthetic entries with given provenance test the pairing and the words; the
published chat files and the shipped checkpoints test the reading of real ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil

import numpy as np
import pytest
from leaderboard_helpers import stored_entry

from agents import shipped_checkpoints
from leaderboard.episodes import get_episode_set, parse_episode_set_id
from leaderboard.provenance import Provenance, read_provenance
from leaderboard.publish import PUBLISHED_DIR
from leaderboard.render import render, render_markdown
from leaderboard.results import read_results
from leaderboard.standings import compute_standings
from leaderboard.stats import paired_difference
from leaderboard.store import VERIFIED, LeaderboardStore
from leaderboard.verify import VerifiedResults

N = 200
CHAT_SET = "Dialog-Chat-v1/test"
DEMOS = "d" * 64


def _model(name: str) -> str:
    """The model hash ``stored_entry`` gives the entry ``name``."""
    return hashlib.sha256(name.encode()).hexdigest()


def _chat_entry(name: str, paradigm: str, shift: float):
    difficulty = np.random.default_rng(3).random(N)  # shared: what pairing exploits
    gold = np.clip(difficulty + shift, 0.0, 1.0)
    return stored_entry(
        name, paradigm, list(gold > 0.5), episode_set=CHAT_SET, gold=[float(g) for g in gold]
    )


def _provenance(base_sha256: str | None) -> dict[str, Provenance]:
    return {
        "sft-c": Provenance("w-sft", data_sha256=DEMOS, generators=("careless-chat-expert",)),
        "bon-c": Provenance(base="sft-c", base_sha256=base_sha256),
    }


ENTRIES = [_chat_entry("sft-c", "sft", 0.0), _chat_entry("bon-c", "best-of-n", -0.05)]


def test_best_of_n_is_paired_with_its_checked_base():
    (s,) = compute_standings(ENTRIES, provenance=_provenance(_model("sft-c")))
    (pair,) = s.lineage_pairs
    assert (pair.kind, pair.rl, pair.sft, pair.measure) == ("base", "bon-c", "sft-c", "gold")
    raw = {e.name: np.asarray(e.gold) for e in ENTRIES}
    assert pair.difference == paired_difference(raw["bon-c"], raw["sft-c"])
    assert pair.difference.high < 0 and not pair.same_weights
    assert s.verdicts[0] == pair.verdict
    assert pair.verdict.startswith(
        "best-of-n vs its base, demos of careless-chat-expert (data dddddddd): bon-c vs "
        f"sft-c on {N} paired episodes: gold difference (best-of-n - base) "
    )
    assert ": its base (sft-c) is ahead. Checked: bon-c samples from the very checkpoint " in (
        pair.verdict
    )
    assert pair.verdict.endswith("declared (the manifests' word): paradigms, budgets.")
    data = json.loads(render([s], "json"))["sets"][0]
    (verdict,) = data["lineage_verdicts"]
    assert (verdict["kind"], verdict["rl"], verdict["sft"]) == ("base", "bon-c", "sft-c")
    assert verdict["difference"]["estimate"] == pytest.approx(pair.difference.estimate)
    assert "best-of-n vs its base" in render_markdown([s])


def test_a_best_of_n_ahead_of_its_base_is_said_so():
    entries = [ENTRIES[0], _chat_entry("bon-c", "best-of-n", +0.05)]
    (s,) = compute_standings(entries, provenance=_provenance(_model("sft-c")))
    assert ": best-of-n (bon-c) is ahead. " in s.lineage_pairs[0].verdict


def test_a_best_of_n_whose_base_is_absent_or_other_weights_gets_no_pair():
    """No row of the board played the base (absent), or the row named like it played
    other weights than the base the best-of-n's hash covers: no verdict, as an RL row
    whose start is not on the board gets none."""
    alone = [e for e in ENTRIES if e.name == "bon-c"]
    (s,) = compute_standings(alone, provenance=_provenance(_model("sft-c")))
    assert s.lineage_pairs == []
    (s,) = compute_standings(ENTRIES, provenance=_provenance(_model("another-sft")))
    assert s.lineage_pairs == []
    (s,) = compute_standings(ENTRIES, provenance=_provenance(None))  # base not checked
    assert s.lineage_pairs == []


def _published(name: str):
    """The published chat file of ``name`` as the board stores it (as ``dialog-bench run
    --publish`` does, and ``tests/test_published.py``), and its per-episode gold."""
    results = read_results(PUBLISHED_DIR / "results" / "Dialog-Chat-v1" / f"{name}.json")
    env_id, set_name, limit = parse_episode_set_id(results["header"]["episode_set"])
    episode_set = get_episode_set(env_id, set_name, limit=limit)
    gold = {e["seed"]: e["metrics"]["mean_gold"] for e in results["episodes"]}
    return VerifiedResults(results["header"], episode_set, results["episodes"]), gold


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    store = LeaderboardStore(tmp_path_factory.mktemp("board") / "chat.sqlite")
    golds = {}
    for name in ("bon-chat", "sft-chat"):
        verified, golds[name] = _published(name)
        store.add(verified, labels=VERIFIED)
    return {e.name: e for e in store.entries()}, golds


def test_the_published_bon_chat_is_paired_with_sft_chat(published):
    entries, golds = published
    (s,) = compute_standings(entries.values())
    (pair,) = [p for p in s.lineage_pairs if p.kind == "base"]
    assert (pair.rl, pair.sft, pair.measure, pair.episodes) == ("bon-chat", "sft-chat", "gold", 500)
    seeds = entries["bon-chat"].seeds
    bon = np.asarray([golds["bon-chat"][k] for k in seeds])
    base = np.asarray([golds["sft-chat"][k] for k in seeds])
    assert pair.difference == paired_difference(bon, base)
    assert pair.difference.estimate == pytest.approx(float(np.mean(bon - base)))
    assert pair.lineage == "demos of careless-chat-expert (data 16f632c1)"
    assert pair.verdict in (PUBLISHED_DIR / "LEADERBOARD.md").read_text(encoding="utf-8").replace(
        "\\", ""
    )


def test_a_base_played_with_other_weights_is_refused(published, tmp_path):
    """The row called sft-chat played other weights than the base bon-chat's hash covers;
    or bon-chat's config names another base than the one it played with: no pair."""
    entries, _ = published
    other = dataclasses.replace(entries["sft-chat"], model_sha256="0" * 64)
    (s,) = compute_standings([entries["bon-chat"], other])
    assert [p for p in s.lineage_pairs if p.kind == "base"] == []

    shipped = shipped_checkpoints()
    copy = shutil.copytree(shipped["bon-chat"], tmp_path / "bon-chat")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "base": "sft-expert"}))
    played = entries["bon-chat"].model_sha256
    assert read_provenance(copy, played).base_sha256 is None
    assert read_provenance(shipped["bon-chat"], played).base_sha256 == (
        entries["sft-chat"].model_sha256
    )
    checkpoints = {"bon-chat": copy, "sft-chat": shipped["sft-chat"]}
    (s,) = compute_standings(entries.values(), checkpoints=checkpoints)
    assert [p for p in s.lineage_pairs if p.kind == "base"] == []
