"""``python -m baselines.rm_eval``: a proxy reward model's (or an ensemble's) held-out
accuracy and correlation with gold, as a report and, for a new RM, in its manifest."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from baselines.prefs import generate_prefs, write_prefs
from baselines.rm_eval import evaluate_rm, main, reply_sides, score_report, write_evaluation
from dialog_env.tasks.chat.reward_model import SHIPPED_RM_DIR, RewardEnsemble, RewardModel


@pytest.fixture(scope="module")
def prefs(tmp_path_factory):
    path = tmp_path_factory.mktemp("prefs") / "p.jsonl"
    pairs, meta = generate_prefs(range(12), label_seed=2)
    write_prefs(path, pairs, meta, "test")
    return path, pairs


@pytest.fixture(scope="module")
def copy_of_rm(tmp_path_factory):
    """A new RM directory (the shipped weights, its normalization moved)."""
    out = tmp_path_factory.mktemp("rm") / "rm"
    shutil.copytree(SHIPPED_RM_DIR, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["normalization"]["mean"] += 0.5
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_the_report_reads_accuracy_and_gold_correlation_off_the_scores(prefs):
    _, pairs = prefs
    _, _, _, gold = reply_sides(pairs)
    perfect = score_report(gold + 1e-3 * np.arange(len(gold)), pairs)  # gold, ties broken
    assert perfect["pair_accuracy_gold"] == 1.0 and perfect["pearson_gold"] > 0.99
    reverse = score_report(-gold, pairs)
    assert reverse["pair_accuracy_gold"] == 0.0 and reverse["pearson_gold"] == -1.0
    shipped = evaluate_rm(RewardModel.load(), pairs)
    assert 0.6 < shipped["pair_accuracy_gold"] < 1.0 and shipped["pearson_gold"] > 0.5


def test_the_ensembles_report_is_that_of_its_combined_scores(prefs, copy_of_rm):
    _, pairs = prefs
    members = [RewardModel.load(), RewardModel.load(copy_of_rm)]
    contexts, texts, _, _ = reply_sides(pairs)
    lowest = np.minimum(*(m.score(contexts, texts) for m in members))
    worst = evaluate_rm(RewardEnsemble(members, "worst"), pairs)
    assert worst == score_report(lowest, pairs)


def test_the_command_writes_a_new_rms_manifest_and_refuses_a_shipped_one(prefs, copy_of_rm, capsys):
    path, pairs = prefs
    assert main(["--prefs", str(path), "--rm", str(copy_of_rm), "--split", "all", "--write"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(printed[: printed.rindex("}") + 1])
    assert report["pairs"] == len(pairs) and report["split"] == "all"
    manifest = json.loads((copy_of_rm / "manifest.json").read_text())
    (entry,) = manifest["evaluations"]
    assert entry["pair_accuracy_labels"] == report["pair_accuracy_labels"]
    assert entry["pearson_gold"] == pytest.approx(
        evaluate_rm(RewardModel.load(copy_of_rm), pairs)["pearson_gold"]
    )
    main(["--prefs", str(path), "--rm", str(copy_of_rm), "--split", "all", "--write"])
    capsys.readouterr()  # the same file and split again: replaced, not appended
    assert len(json.loads((copy_of_rm / "manifest.json").read_text())["evaluations"]) == 1
    before = (SHIPPED_RM_DIR / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="ships with the package"):
        write_evaluation(SHIPPED_RM_DIR, entry)
    assert (SHIPPED_RM_DIR / "manifest.json").read_bytes() == before
