"""The slot tagger beside the rule-based parser, on held-out user turns.

    python -m baselines.tagger_report --out leaderboard/tagger_report.json

The held-out turns are those the expert's episodes voice for ``split="test"`` goals
(constraint combinations no train goal has) on ``--episodes`` seeds from
``--first-seed``, by the LM voice, tagged by the voice's placeholders
(:mod:`baselines.tagger_data`; the turns that fell back to the template are kept and
counted). Both readers are scored on the same turns:

- ``entity_report``: ``seqeval``'s entity-level ``classification_report`` (precision,
  recall, F1 and support per slot; micro, macro and weighted averages). The tagger's
  entities are its tagged spans; the parser's are the words of each slot value it reads
  (:func:`parser_tags`: the last words of the sentence that name the value, as it keeps
  the last value it finds).
- ``value_report``: what the tracker gets, per slot: precision, recall and F1 of the
  ``slot=value`` pairs read (the tagger's spans checked against the domain), and the
  share of turns whose values are all exactly right.

On these turns the parser is right by construction: the voice keeps a sentence only when
the parser reads it back as its act. So the report also reads the same turns shifted
(``shifted``): every slot value's words capitalized (``Thai``, ``North``, ``Friday``), as
people write them and the env never does (:func:`capitalize_values`), tags unchanged.

The JSON also holds the test turns' seeds, count, fallbacks and sha256, the tagger's
directory and weights hash, and the command. Needs the ``tagger`` extra (``seqeval``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["capitalize_values", "heldout_report", "main", "parser_tags", "value_report"]


def parser_tags(sentence_words: Sequence[str], text: str) -> list[str]:
    """The BIO tags of the slot values the rule-based parser reads in ``text``: for each
    value of its ``inform`` and ``book`` acts, the last run of words that names it.

    >>> parser_tags(["Thai", "food", "for", "4", "."], "Thai food for 4.")
    ['B-food', 'O', 'O', 'B-people', 'O']
    """
    from dialog_env.tasks.booking.parser import parse_user
    from dialog_env.tasks.booking.tagging import slot_value

    tags = ["O"] * len(sentence_words)
    for act in parse_user(text):
        if act.intent not in ("inform", "book"):
            continue
        for slot, value in act.slots:
            span = _last_span(sentence_words, lambda ws, s=slot, v=value: slot_value(s, ws) == v)
            if span is not None:
                tags[span[0] : span[1]] = [f"B-{slot}"] + [f"I-{slot}"] * (span[1] - span[0] - 1)
    return tags


def _last_span(sentence_words: Sequence[str], names: Any, longest: int = 3):
    for end in range(len(sentence_words), 0, -1):
        for start in range(end - 1, max(end - longest, 0) - 1, -1):
            if names(" ".join(sentence_words[start:end])):
                return start, end
    return None


def capitalize_values(turn: dict[str, Any]) -> dict[str, Any]:
    """The turn with every tagged word capitalized (text and words; tags unchanged).

    >>> turn = {"text": "thai food on friday.", "words": ["thai", "food", "on", "friday", "."],
    ...         "tags": ["B-food", "O", "O", "B-day", "O"], "fell_back": False}
    >>> capitalize_values(turn)["text"]
    'Thai food on Friday.'
    """
    from dialog_env.tasks.booking.tagging import words

    text = turn["text"]
    for (word, (start, end)), tag in zip(words(text), turn["tags"], strict=True):
        if tag != "O":
            text = text[:start] + word.capitalize() + text[end:]
    return {**turn, "text": text, "words": [w for w, _ in words(text)]}


def _readings(tagger: Any, turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Both readers' entity and value reports on ``turns``."""
    from baselines.tagger import entity_report
    from dialog_env.tasks.booking.parser import parse_user
    from dialog_env.tasks.booking.tagging import tagged_values

    gold = [t["tags"] for t in turns]
    tagged = tagger.tag([t["text"] for t in turns])
    parsed = [parser_tags(t["words"], t["text"]) for t in turns]
    gold_values = [tagged_values(t["words"], t["tags"]) for t in turns]
    parser_values = [
        {
            s: v
            for a in parse_user(t["text"])
            if a.intent in ("inform", "book")
            for s, v in a.slots
            if v != "dontcare"
        }
        for t in turns
    ]
    tagger_values = [tagged_values(t["words"], p) for t, p in zip(turns, tagged, strict=True)]
    return {
        "tagger": {
            "entity_report": entity_report(gold, tagged),
            "value_report": value_report(gold_values, tagger_values),
        },
        "parser": {
            "entity_report": entity_report(gold, parsed),
            "value_report": value_report(gold_values, parser_values),
        },
    }


def value_report(gold: list[dict[str, str]], read: list[dict[str, str]]) -> dict[str, Any]:
    """Per slot and over all slots, precision, recall and F1 of the ``slot=value`` pairs
    ``read`` against ``gold`` (one dict per turn), and the share of turns read exactly.

    >>> value_report([{"food": "thai"}, {"day": "monday"}], [{"food": "thai"}, {}])["all"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6667, 'support': 2}
    """
    from dialog_env.tasks.booking.voice import PLACEHOLDER_SLOTS

    def scores(slots: Sequence[str]) -> dict[str, Any]:
        hit = sum(
            g.get(s) is not None and g.get(s) == r.get(s)
            for g, r in zip(gold, read, strict=True)
            for s in slots
        )
        n_read = sum(s in r for r in read for s in slots)
        n_gold = sum(s in g for g in gold for s in slots)
        p = hit / n_read if n_read else 0.0
        r = hit / n_gold if n_gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(f1, 4),
            "support": n_gold,
        }

    out = {s: scores([s]) for s in PLACEHOLDER_SLOTS}
    out["all"] = scores(PLACEHOLDER_SLOTS)
    exact = sum(g == r for g, r in zip(gold, read, strict=True))
    out["turns_exact"] = round(exact / len(gold), 4) if gold else 0.0
    return out


def heldout_report(
    tagger_dir: str | Path | None = None, first_seed: int = 0, episodes: int = 300
) -> dict[str, Any]:
    """The report of the module docstring, as a dict (the tagger: the shipped one)."""
    from baselines.tagger_data import turns_sha256, voiced_turns
    from dialog_env.lm.model_files import file_sha256
    from dialog_env.tasks.booking.tagger import SHIPPED_TAGGER_DIR, SlotTagger

    tagger = SlotTagger.load(tagger_dir)
    turns = voiced_turns(range(first_seed, first_seed + episodes), split="test")
    path = Path(tagger.path or SHIPPED_TAGGER_DIR)
    readings = _readings(tagger, turns)
    shifted = _readings(tagger, [capitalize_values(t) for t in turns])
    return {
        "test": {
            "env_id": "Dialog-v1",
            "split": "test",
            "generator": "expert",
            "user_model": "tiny",
            "seeds": [first_seed, first_seed + episodes],
            "turns": len(turns),
            "fallback_turns": sum(t["fell_back"] for t in turns),
            "entities": sum(tag.startswith("B-") for t in turns for tag in t["tags"]),
            "sha256": turns_sha256(turns),
        },
        "tagger": {
            "dir": path.name,
            "weights_sha256": file_sha256(path / "model.safetensors"),
            **readings["tagger"],
        },
        "parser": readings["parser"],
        "shifted": {"what": "the same turns, every slot value's words capitalized", **shifted},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m baselines.tagger_report``: write the report (module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m baselines.tagger_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tagger", type=Path, default=None, help="tagger dir (default: shipped)")
    p.add_argument("--first-seed", type=int, default=0, help="first test-split seed")
    p.add_argument("--episodes", type=int, default=300, help="expert episodes voiced")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args(argv)
    report = heldout_report(args.tagger, args.first_seed, args.episodes)
    words = ["python", "-m", "baselines.tagger_report", *(sys.argv[1:] if argv is None else argv)]
    report["command"] = shlex.join(words)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    for reader in ("tagger", "parser"):
        micro = report[reader]["entity_report"]["micro avg"]
        print(f"{reader}: entity F1 {micro['f1-score']:.4f} on {report['test']['turns']} turns")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
