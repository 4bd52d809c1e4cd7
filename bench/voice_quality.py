"""How well the LM voices the user: the issue-3 targets, measured on expert episodes.

    python -m bench.voice_quality                 # 500 test-split episodes, the tiny LM
    python -m bench.voice_quality --episodes 50 --user-model PATH
    python -m bench.voice_quality --smoke         # 2 episodes, no corpus rebuild

The expert plays the same seeds twice, once with the LM voice and once with the
template voice, and the script reports:

- fallback share: user turns whose LM samples all failed the check (target <= 5%),
- distinct-2 of the user turns, LM / template (target >= 2x), both over the same number
  of bigrams (the first ones of the smaller side's count: the share of distinct n-grams
  falls as a text grows, so the side with more words would be marked down),
- the expert's success with the LM voice (target >= 95%) beside the template's,
- novelty: the share of LM-voiced turns whose delexicalized sentence appears nowhere in
  the pretraining corpus (rebuilt from the model's manifest and checked by its sha256),
  and the share whose filled text appears in no corpus document (``--no-novelty``
  skips the corpus rebuild, some 10 s).

The reference of the ratio, the template voice, plays the very same seeds with the same
expert in the same split.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from bench import parse_args
from bench.record import BenchRecord, add_out_argument

__all__ = ["distinct_n", "main", "measure"]

_WORD_RE = re.compile(r"[a-z0-9:\[\]]+|[^\sa-z0-9]")


def distinct_n(texts: list[str], n: int = 2, max_grams: int | None = None) -> float:
    """Distinct n-grams over all n-grams of ``texts`` (lower-cased words and punctuation),
    or over the first ``max_grams`` of them.

    >>> round(distinct_n(["a b a b", "a b"], 2), 3)
    0.5
    >>> distinct_n(["a b c a b"], 2, max_grams=2)
    1.0
    """
    grams = _ngrams(texts, n)[:max_grams]
    return len(set(grams)) / max(1, len(grams))


def _ngrams(texts: list[str], n: int) -> list[tuple[str, ...]]:
    grams = []
    for text in texts:
        words = _WORD_RE.findall(text.lower())
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return grams


class _RecordingVoice:
    """Wraps an LMVoice: voices as it does and keeps every turn's delexicalized sample."""

    def __init__(self, voice):
        self.inner, self.samples = voice, []

    def voice_batch(self, turns, rngs):
        sentences = self.inner.sample_batch(turns, rngs)
        self.samples += sentences
        return [self.inner.realize(acts, s) for acts, s in zip(turns, sentences, strict=True)]

    def voice(self, acts, rng):
        return self.voice_batch([acts], [rng])[0]


def _play(env, seeds) -> dict:
    from agents import load_agent

    expert = load_agent("expert")
    texts, user_turns, fallbacks, successes = [], 0, 0, 0
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        expert.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
        texts += [t["text"] for t in info["turns"] if t["role"] == "user"]
        metrics = info.get("metrics") or {}
        user_turns += metrics.get("user_turns", 0)
        fallbacks += metrics.get("voice_fallbacks", 0)
        successes += bool(info.get("success", False))
    return {
        "texts": texts,
        "user_turns": user_turns,
        "fallbacks": fallbacks,
        "success": successes / len(seeds),
    }


def _corpus_sentences(model_dir: Path) -> tuple[set[str], str] | None:
    """The delexicalized user sentences of the model's corpus and all its text, if rebuilt."""
    from baselines.pretrain import corpus_documents
    from dialog_env.lm.format import END, SAY, corpus_sha256
    from dialog_env.tasks.booking.corpus import CorpusConfig

    manifest_file = model_dir / "manifest.json"
    if not manifest_file.exists():
        return None
    corpus = json.loads(manifest_file.read_text())["corpus"]
    fields = {k: corpus[k] for k in CorpusConfig.__dataclass_fields__ if k in corpus}
    docs = list(corpus_documents(CorpusConfig(**fields)))
    if corpus_sha256(docs) != corpus["sha256"]:
        print(
            "warning: the rebuilt corpus differs from the manifest's; novelty not measured",
            file=sys.stderr,
        )
        return None
    said = {d.split(SAY, 1)[1].split(END, 1)[0].strip() for d in docs if SAY in d}
    return said, "\n".join(docs)


def measure(
    episodes: int = 500,
    user_model: str = "tiny",
    split: str = "test",
    device: str = "cpu",
    novelty: bool = True,
) -> dict:
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from dialog_env.lm.user_model import model_dir

    seeds = range(episodes)
    start = time.time()
    env = gym.make("Dialog-v1", split=split, user_model=user_model, device=device)
    recorder = _RecordingVoice(env.unwrapped.voice)
    env.unwrapped.voice = recorder
    lm = _play(env, seeds)
    lm_seconds = time.time() - start
    template = _play(gym.make("Dialog-v1", split=split, user_model="template"), seeds)
    bigrams = min(len(_ngrams(lm["texts"], 2)), len(_ngrams(template["texts"], 2)))
    report = {
        "episodes": episodes,
        "split": split,
        "user_model": str(user_model),
        "user_turns": lm["user_turns"],
        "fallback_share": lm["fallbacks"] / max(1, lm["user_turns"]),
        "distinct2_bigrams": bigrams,
        "distinct2_lm": distinct_n(lm["texts"], 2, bigrams),
        "distinct2_template": distinct_n(template["texts"], 2, bigrams),
        "expert_success_lm": lm["success"],
        "expert_success_template": template["success"],
        "lm_seconds": round(lm_seconds, 1),
    }
    report["distinct2_ratio"] = report["distinct2_lm"] / report["distinct2_template"]
    corpus = _corpus_sentences(model_dir(user_model)) if novelty else None
    voiced = [s for s in recorder.samples if s is not None]
    if corpus is not None and voiced:
        said, text = corpus
        report["novel_share_delexicalized"] = sum(s not in said for s in voiced) / len(voiced)
        filled = [t for t, s in zip(lm["texts"], recorder.samples, strict=True) if s is not None]
        report["novel_share_filled"] = sum(t not in text for t in filled) / len(filled)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.voice_quality", description=__doc__)
    p.add_argument("--episodes", type=int, default=500, help="expert episodes (seeds 0..N-1)")
    p.add_argument("--user-model", default="tiny", help="'tiny' or a model directory")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--novelty",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="rebuild the pretraining corpus and measure novel sentences",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_out_argument(p)
    args = parse_args(p, argv, {"episodes": 2, "novelty": False})
    with BenchRecord("voice_quality", argv, args) as record:
        report = measure(args.episodes, args.user_model, args.split, args.device, args.novelty)
        record.figures |= {k: v for k, v in report.items() if isinstance(v, int | float)}
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_report(report)
    return 0


def print_report(report: dict) -> None:
    """Print ``measure``'s report as the bench's table and its ratio line."""
    print(
        f"{report['episodes']} {report['split']}-split expert episodes, "
        f"user_model={report['user_model']}, {report['user_turns']} user turns "
        f"({report['lm_seconds']} s with the LM)"
    )
    print(f"  fallback share        {report['fallback_share']:.2%}   (target <= 5%)")
    print(
        f"  distinct-2            {report['distinct2_lm']:.4f} LM vs "
        f"{report['distinct2_template']:.4f} template over the first "
        f"{report['distinct2_bigrams']:,} bigrams of each"
    )
    print(
        f"  expert success        {report['expert_success_lm']:.1%} LM vs "
        f"{report['expert_success_template']:.1%} template   (target >= 95%)"
    )
    if "novel_share_delexicalized" in report:
        print(
            f"  novel sentences       {report['novel_share_delexicalized']:.1%} of LM-voiced "
            f"turns not in the corpus (delexicalized); "
            f"{report['novel_share_filled']:.1%} with values filled in"
        )
    print(f"ratio distinct-2 LM / template = {report['distinct2_ratio']:.3f}  (target >= 2)")


if __name__ == "__main__":
    sys.exit(main())
