"""The numerics the published transcripts depend on are pinned, and publishing checks them."""

from __future__ import annotations

from importlib import metadata

import pytest

from dialog_bench.cli import main
from leaderboard.numerics import CONSTRAINTS, check_numerics, numerics_mismatches, parse_constraints

#: What the published transcripts' floats go through: pinned, each to one exact version.
NUMERICS = {"torch", "transformers", "numpy", "tokenizers", "safetensors", "sentencepiece"}


def test_constraints_pin_every_package_the_floats_go_through():
    pins = parse_constraints(CONSTRAINTS.read_text(encoding="utf-8"))
    assert set(pins) == NUMERICS


def test_this_machine_has_the_pinned_numerics():
    """The published files were made and are checked here: a drift is seen at once."""
    assert numerics_mismatches() == []
    check_numerics()


def test_another_version_is_named_and_refused(tmp_path):
    pinned = tmp_path / "constraints.txt"
    numpy = metadata.version("numpy")
    pinned.write_text(f"numpy==0.0.1  # not this one\ntorch=={metadata.version('torch')}\n")
    assert numerics_mismatches(pinned) == [f"numpy {numpy} (pinned 0.0.1)"]
    with pytest.raises(ValueError, match=rf"not published: .*numpy {numpy} \(pinned 0\.0\.1\)"):
        check_numerics(pinned)
    pinned.write_text("no-such-package-db==1.0\n")
    assert numerics_mismatches(pinned) == ["no-such-package-db not installed (pinned 1.0)"]


@pytest.mark.parametrize("line", ["torch>=2.6", "torch", "torch==2.13.0 extra"])
def test_a_pin_must_be_exact(tmp_path, line):
    with pytest.raises(ValueError, match="line 1 is not a pin NAME==VERSION"):
        parse_constraints(line)


def test_run_publish_refuses_other_numerics_before_playing_anything(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("leaderboard.run.run_baselines", lambda *a, **k: calls.append(a) or [])
    monkeypatch.setattr("leaderboard.numerics._installed", lambda name: "0.0.0")
    assert main(["run", "--publish", "--quiet", "--db", str(tmp_path / "lb.sqlite")]) == 2
    assert "not published: the installed numerics differ from constraints.txt" in (
        capsys.readouterr().err
    )
    assert calls == []
