"""``dialog-bench pretrain``: a small run end to end, its outputs and its determinism."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from baselines.pretrain import PretrainConfig, train  # noqa: E402
from dialog_bench.cli import main as cli_main  # noqa: E402
from dialog_env.lm.loading import load_causal_lm  # noqa: E402

SMALL = dict(
    dialogues=20,
    sampled_turns=150,
    vocab_size=600,
    hidden_size=32,
    layers=1,
    heads=2,
    intermediate_size=64,
    context=64,
    batch_size=4,
    steps=6,
    warmup_steps=2,
    threads=1,
    progress=False,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "a"
    manifest = train(PretrainConfig(out=str(out), **SMALL), command="test")
    return out, manifest


def test_writes_a_loadable_model_directory(run):
    out, manifest = run
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer.model",
        "manifest.json",
        "loss_curve.png",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin"))
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert on_disk["steps"] == 6 and len(on_disk["corpus"]["sha256"]) == 64
    assert on_disk["final_loss"] > 0 and on_disk["wall_time_s"] > 0
    lm = load_causal_lm(out)
    assert lm.style == "voice"
    assert (
        transformers.AutoModelForCausalLM.from_pretrained(out).config.max_position_embeddings == 64
    )


def test_same_seed_same_weights(run, tmp_path):
    out, manifest = run
    again = train(PretrainConfig(out=str(tmp_path / "b"), **SMALL), command="test")
    assert again["corpus"]["sha256"] == manifest["corpus"]["sha256"]
    assert again["final_loss"] == manifest["final_loss"]
    assert (tmp_path / "b" / "model.safetensors").read_bytes() == (
        out / "model.safetensors"
    ).read_bytes()


def test_cli_lists_pretrain_with_help_for_every_field(capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(["pretrain", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--seed", "--steps", "--context", "--sampled-turns", "--out"):
        assert flag in text
