"""The data commands make the same bytes everywhere: ``dialog-bench demos`` and
``dialog-bench prefs`` on a few episodes give files whose sha256 is pinned here.

The shipped checkpoints' manifests record their data's sha256 (``data_sha256``), and the
README's commands are said to make that data again; a change in what a generator writes,
in the env's episodes, in the voice or in the labels' draws shows here first, not after a
30-minute training run that no longer rebuilds its row. A change that is meant (one that
also moves the published episodes) updates these hashes in the same commit, and says why.
"""

from __future__ import annotations

import json

import pytest

from dialog_bench.cli import main

#: The default generators of ``dialog-bench prefs`` before ``sampled`` joined them: named
#: so, the command writes the bytes the default wrote then.
PREFS_GENERATORS_BEFORE_SAMPLED = ["good", "invents", "omits", "wrong", "verbose", "curt", "random"]
#: (command after ``dialog-bench``, the sha256 of the JSONL it writes), on 4 train episodes.
PINNED = {
    "expert demos": (
        ["demos", "--generator", "expert", "--episodes", "4"],
        "a46b0ae19c2745675700f6556ae4f780b5facaa891973844adce56b3175965c0",
    ),
    "noisy demos, shuffled names": (
        [
            "demos",
            "--generator",
            "noisy-expert",
            "--episodes",
            "4",
            "--first-seed",
            "300000",
            "--env-kwargs",
            '{"venue_names": "shuffled"}',
        ],
        "18ecb4fafa850e7d02b080913fe7e5d93bcdf88ef8f06ff226ed3b738b60c4f0",
    ),
    # the default generators include ``sampled`` (the seed loop's action_space.sample()
    # strings) since issue 27 item 5; the shipped chat RM and sft-chat were made before it
    "preference pairs": (
        ["prefs", "--num-episodes", "4"],
        "de0f0784428d4e62ce46c51a2bf0316bcc5bfac59821aa1ddb0945a0e0eb5c65",
    ),
    "preference pairs, the seven generators before sampled": (
        ["prefs", "--num-episodes", "4", "--generators", *PREFS_GENERATORS_BEFORE_SAMPLED],
        "86e6fcbcff960e35070088b00369dbce380b64ac86074bcbafcc3e5a4b70513e",
    ),
}


@pytest.mark.parametrize("what", sorted(PINNED))
def test_a_data_command_writes_the_pinned_bytes(what, tmp_path, capsys):
    import hashlib

    argv, pinned = PINNED[what]
    out = tmp_path / "data.jsonl"
    assert main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    written = hashlib.sha256(out.read_bytes()).hexdigest()
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert meta["sha256"] == written  # the metadata names the bytes beside it
    assert written == pinned, f"{what}: the command writes other data than it did ({written})"
