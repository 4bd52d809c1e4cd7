"""Pretrain the tiny LM from scratch: corpus -> tokenizer -> causal LM -> model directory.

``dialog-bench pretrain`` (or ``python -m baselines.pretrain``) reproduces the model
shipped in ``dialog_env/assets/tiny`` from its seed, in about a quarter of an hour on 2
CPU cores. The script reads top to bottom: generate the corpus (the booking task's records,
dialogues with a random assistant + act -> sentence pairs,
:mod:`dialog_env.tasks.booking.corpus`, formatted here as LM documents by
:func:`corpus_documents`), train the sentencepiece tokenizer on it, pack the token stream
into fixed windows, train a GPT-NeoX-style causal LM with AdamW and a cosine schedule, and
save the directory::

    out/
      model.safetensors  config.json  generation_config.json     the model
      tokenizer.json  tokenizer_config.json  tokenizer.model     the tokenizer
      manifest.json  loss_curve.png                              how it was made

A fixed step count (not a time budget) ends training, so the same seed and thread count
give the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from baselines.common.config import add_config_arguments, config_from_args

if TYPE_CHECKING:
    from dialog_env.tasks.booking.corpus import CorpusConfig

__all__ = ["PretrainConfig", "add_parser", "corpus_documents", "main", "train"]


def _arg(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class PretrainConfig:
    """Everything that decides the pretrained model; each field is a CLI flag."""

    out: str = _arg("runs/tiny", "directory to write the model to")
    seed: int = _arg(0, "seeds the corpus, the tokenizer, the initialization and the batches")
    dialogues: int = _arg(4_000, "random-assistant dialogues in the corpus")
    sampled_turns: int = _arg(90_000, "extra act -> sentence pairs of sampled user turns")
    vocab_size: int = _arg(1536, "sentencepiece pieces, 256 byte pieces and specials included")
    hidden_size: int = _arg(128, "model width")
    layers: int = _arg(4, "transformer blocks")
    heads: int = _arg(4, "attention heads")
    intermediate_size: int = _arg(512, "MLP width")
    context: int = _arg(512, "tokens per training window, and the model's maximum context")
    batch_size: int = _arg(16, "windows per step")
    steps: int = _arg(700, "optimizer steps (training ends here, never on a timer)")
    lr: float = _arg(3e-3, "peak learning rate (AdamW)")
    warmup_steps: int = _arg(30, "linear warmup before the cosine decay to lr/10")
    weight_decay: float = _arg(0.01, "AdamW weight decay")
    threads: int = _arg(2, "torch CPU threads")
    progress: bool = _arg(True, "show a progress bar")


def corpus_documents(corpus: CorpusConfig) -> Iterator[str]:
    """The corpus's records as LM documents, one per record and in its order: a dialogue
    as :func:`~dialog_env.lm.format.dialogue_document`, a voice pair as
    :func:`~dialog_env.lm.format.voice_document` (the shipped model's manifest holds
    their sha256)."""
    from dialog_env.lm.format import dialogue_document, voice_document
    from dialog_env.tasks.booking.corpus import VoicePair, corpus_records

    for record in corpus_records(corpus):
        if isinstance(record, VoicePair):
            yield voice_document(record.acts, record.sentence)
        else:
            yield dialogue_document(record.turns)


def build_corpus(config: PretrainConfig) -> list[str]:
    """The documents of the corpus ``config`` asks for."""
    return list(corpus_documents(corpus_config(config)))


def corpus_config(config: PretrainConfig):
    from dialog_env.tasks.booking.corpus import CorpusConfig

    return CorpusConfig(
        seed=config.seed, dialogues=config.dialogues, sampled_turns=config.sampled_turns
    )


def _windows(tokenizer, documents: list[str], context: int, seed: int):
    """Shuffle the documents, concatenate their tokens and cut windows of context + 1."""
    import numpy as np
    import torch

    order = np.random.default_rng(seed).permutation(len(documents))
    encoded = tokenizer([documents[i] for i in order], add_special_tokens=False)["input_ids"]
    ids = [t for doc in encoded for t in doc]
    n = (len(ids) - 1) // context
    stream = torch.tensor(ids[: n * context + 1], dtype=torch.long)
    starts = torch.arange(n) * context
    return stream, starts, len(ids)


def _lr_at(step: int, config: PretrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    t = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def plot_loss(losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    smooth, ema = [], losses[0]
    for x in losses:
        ema = 0.95 * ema + 0.05 * x
        smooth.append(ema)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(losses, alpha=0.3, label="loss per step")
    ax.plot(smooth, label="moving average")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_yscale("log")
    ax.set_title("tiny LM pretraining")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(config: PretrainConfig, command: str = "") -> dict:
    """Run the whole pipeline and write ``config.out``; return the manifest.
    One function on purpose, read top to bottom: corpus -> tokenizer -> model -> one loop
    of steps -> save, as cleanrl's scripts read."""
    import numpy as np
    import torch
    from tqdm import tqdm
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from dialog_env.lm.format import corpus_sha256
    from dialog_env.lm.tokenizer import SPM_FILE, build_tokenizer, train_sentencepiece
    from dialog_env.tasks.booking.voice import PLACEHOLDER_TOKENS

    start = time.time()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)

    documents = build_corpus(config)
    spm = train_sentencepiece(documents, config.vocab_size, placeholder_tokens=PLACEHOLDER_TOKENS)
    (out / SPM_FILE).write_bytes(spm)
    tokenizer = build_tokenizer(out / SPM_FILE, placeholder_tokens=PLACEHOLDER_TOKENS)
    stream, starts, n_tokens = _windows(tokenizer, documents, config.context, config.seed)
    print(
        f"corpus: {len(documents)} documents, {n_tokens} tokens, {len(starts)} windows; "
        f"training on {config.steps * config.batch_size * config.context} tokens",
        file=sys.stderr,
    )

    torch.manual_seed(config.seed)  # the initialization; batches use their own generator
    model_config = GPTNeoXConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.context,
        rotary_pct=0.5,
        tie_word_embeddings=True,
        use_parallel_residual=False,
        attention_dropout=0.0,
        hidden_dropout=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPTNeoXForCausalLM(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    batches = np.random.default_rng(config.seed + 1)
    offsets = torch.arange(config.context + 1)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(config.steps), desc="pretrain", disable=not config.progress, file=sys.stderr)
    for step in bar:
        rows = torch.from_numpy(batches.integers(len(starts), size=config.batch_size))
        window = stream[starts[rows][:, None] + offsets]
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        logits = model(input_ids=window[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), window[:, 1:].reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")

    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    plot_loss(losses, out / "loss_curve.png")
    final = float(np.mean(losses[-20:]))
    manifest = {
        "command": command,
        "seed": config.seed,
        "config": asdict(config),
        "corpus": {
            **asdict(corpus_config(config)),
            "documents": len(documents),
            "tokens": n_tokens,
            "sha256": corpus_sha256(documents),
        },
        "parameters": n_params,
        "steps": config.steps,
        "tokens_seen": config.steps * config.batch_size * config.context,
        "final_loss": round(final, 4),
        "wall_time_s": round(time.time() - start, 1),
        "versions": {
            "torch": torch.__version__,
            "transformers": _version("transformers"),
            "sentencepiece": _version("sentencepiece"),
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(
        f"wrote {out}: {n_params} parameters, final loss {final:.3f}, {manifest['wall_time_s']} s",
        file=sys.stderr,
    )
    return manifest


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain the tiny user LM from scratch (corpus, tokenizer, model)",
        description=__doc__.split("\n\n")[0],
    )
    add_config_arguments(p, PretrainConfig)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args, PretrainConfig)
    program = Path(sys.argv[0]).name
    if program in ("pretrain.py", "__main__.py", "-m", "-c"):
        program = "python -m baselines.pretrain"
    train(config, command=" ".join([program, *map(shlex.quote, sys.argv[1:])]))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m baselines.pretrain", description=__doc__)
    add_config_arguments(p, PretrainConfig)
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
