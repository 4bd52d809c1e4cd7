"""Hostile checkpoints of every agent kind (issue 30): nothing outside the checkpoint is read.

A hostile checkpoint names a directory of the server (a LoRA ``base_model``, a best-of-n
``base``, a link, an include in a chat template). It is submitted and loaded under an
audit hook that records every ``open``, ``os.listdir`` and ``os.scandir``: only the
checkpoint, its private copy, the store and the package's own shipped files (and the
Python installation's) may appear. A bait model beside the checkpoint, which the old code
hashed or loaded, must never be touched; the refusal reads the same whether the path it
names exists or not.
"""

from __future__ import annotations

import copy
import json
import resource
import shutil
import site
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import load_agent
from agents.chat_template import (
    MAX_PROMPT_CHARS,
    MAX_TEMPLATE_CHARS,
    RENDER_MEMORY_BYTES,
    RENDER_SECONDS,
    TemplateRefused,
    render_chat,
)
from dialog_env.lm import TINY_MODEL_DIR
from leaderboard.store import LeaderboardStore
from leaderboard.submit import ResultsRejected, submit_checkpoint

REPO = REPO_ROOT
SHIPPED = REPO / "baselines" / "checkpoints"
#: Where code and shipped assets live: reading them is not reading the server's files.
LIBRARY_ROOTS = tuple(
    Path(p).resolve()
    for p in {sys.prefix, sys.base_prefix, *site.getsitepackages(), site.getusersitepackages()}
) + tuple(REPO / pkg for pkg in ("agents", "baselines", "dialog_env", "leaderboard", "tests"))
SYSTEM_ROOTS = (Path("/dev"), Path("/proc"), Path("/sys"))
SNAPSHOTS = Path(tempfile.gettempdir()).resolve()

_SEEN: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _SEEN is None or event not in ("open", "os.listdir", "os.scandir"):
        return
    path = args[0] if args else None
    if isinstance(path, (str, bytes)) or hasattr(path, "__fspath__"):
        _SEEN.append(str(path if not isinstance(path, bytes) else path.decode(errors="replace")))


sys.addaudithook(_audit)


def _allowed(path: str, ckpt: Path, extra: tuple[Path, ...]) -> bool:
    if "/" not in path and path not in (".", ".."):
        return True  # an entry opened by name in a directory already opened (dir_fd)
    p = Path(path).resolve() if Path(path).is_absolute() else (Path.cwd() / path).resolve()
    if p.is_relative_to(ckpt.resolve()) or any(p.is_relative_to(e) for e in extra):
        return True
    if p.is_relative_to(SNAPSHOTS) and any(
        part.startswith("dialog-bench-checkpoint-") for part in p.parts
    ):
        return True  # submit's private copy of the checkpoint
    return any(p.is_relative_to(r) for r in LIBRARY_ROOTS + SYSTEM_ROOTS)


def _outside_reads(action, ckpt: Path, *extra: Path) -> tuple[list[str], BaseException | None]:
    """What ``action()`` opened or listed outside ``ckpt`` and the allowed roots, and what
    it raised."""
    global _SEEN
    _SEEN = []
    raised = None
    try:
        action()
    except (ValueError, ResultsRejected) as err:
        raised = err
    finally:
        seen, _SEEN = _SEEN, None
    return sorted({p for p in seen if not _allowed(p, ckpt, tuple(extra))}), raised


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Path:
    """A server's directory with real models in it: what a hostile checkpoint aims at."""
    root = tmp_path_factory.mktemp("server")
    shutil.copytree(TINY_MODEL_DIR, root / "bait-lm")
    shutil.copytree(SHIPPED / "sft-chat", root / "bait-ckpt")
    return root


def _lora_checkpoint(where: Path, base_model: str) -> Path:
    pytest.importorskip("peft")
    from agents.lora import add_lora, base_reference, save_lora
    from dialog_env.lm.loading import load_causal_lm

    model = add_lora(copy.deepcopy(load_causal_lm(TINY_MODEL_DIR).model), rank=2)
    save_lora(where, model)
    config = {"agent": "lm", "paradigm": "sft", "interface": "text"}
    config |= base_reference(TINY_MODEL_DIR) | {"base_model": base_model}
    (where / "config.json").write_text(json.dumps(config))
    return where


def _hostile(kind: str, tmp_path: Path, server: Path) -> list[Path]:
    """Checkpoints of ``kind`` that name ``server``'s files in every way we know."""
    out: list[Path] = []
    if kind == "lm":
        for i, name in enumerate(
            [str(server / "bait-lm"), str(server / "absent"), "../server/bait-lm", "~", "bait-lm"]
        ):
            out.append(_lora_checkpoint(tmp_path / f"lora{i}", name))
    elif kind == "best-of-n":  # the old loader took a sibling of the checkpoint
        shutil.copytree(server / "bait-ckpt", tmp_path / "bait-ckpt")
        for i, base in enumerate(["bait-ckpt", "absent", "server"]):
            ckpt = tmp_path / f"bon{i}"
            ckpt.mkdir()
            config = {"agent": "best-of-n", "base": base, "env_id": "Dialog-Chat-v1"}
            (ckpt / "config.json").write_text(json.dumps(config))
            out.append(ckpt)
    elif kind == "hf-chat":
        ckpt = tmp_path / "chat-link"
        ckpt.mkdir()
        (ckpt / "config.json").write_text(json.dumps({"agent": "hf-chat"}))
        (ckpt / "lm").symlink_to(server / "bait-lm", target_is_directory=True)
        out.append(ckpt)
    elif kind == "sb3":
        ckpt = shutil.copytree(SHIPPED / "sb3-ppo", tmp_path / "sb3-link")
        (ckpt / "model.safetensors").unlink()
        (ckpt / "model.safetensors").symlink_to(server / "bait-lm" / "model.safetensors")
        out.append(ckpt)
    return out


KINDS = ["lm", "best-of-n", "hf-chat", "sb3"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_checkpoint_reads_nothing_outside_when_loaded(kind, tmp_path, server):
    for ckpt in _hostile(kind, tmp_path, server):
        (server / "bait-lm" / "config.json").touch()
        outside, raised = _outside_reads(lambda c=ckpt: load_agent(c), ckpt)
        assert outside == [], f"{ckpt.name}: read {outside}"
        assert isinstance(raised, ValueError) and "\n" not in str(raised), ckpt.name


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_checkpoint_reads_nothing_outside_when_submitted(
    kind, tmp_path, server, monkeypatch
):
    monkeypatch.chdir(server)  # "bait-lm" then names the bait relative to the cwd
    db = tmp_path / "board.db"
    store = LeaderboardStore(db)
    for ckpt in _hostile(kind, tmp_path, server):
        outside, raised = _outside_reads(
            lambda c=ckpt: submit_checkpoint(c, store, limit=1), ckpt, db.parent / "board.db"
        )
        assert outside == [], f"{ckpt.name}: read {outside}"
        assert isinstance(raised, ResultsRejected) and "\n" not in str(raised), ckpt.name


def test_a_missing_and_an_existing_outside_base_are_refused_in_the_same_words(tmp_path, server):
    messages = []
    for name in (str(server / "bait-lm"), str(server / "absent-lm")):
        ckpt = _lora_checkpoint(tmp_path / Path(name).name, name)
        with pytest.raises(ValueError) as refused:
            load_agent(ckpt)
        messages.append(str(refused.value).replace(str(ckpt), "CKPT").replace(name, "NAME"))
    assert messages[0] == messages[1]
    assert "is not a directory" not in messages[0] and "sha256" not in messages[0]


def test_a_base_inside_the_checkpoint_and_a_shipped_one_load(tmp_path):
    pytest.importorskip("peft")
    inside = _lora_checkpoint(tmp_path / "inside", "base")
    shutil.copytree(TINY_MODEL_DIR, inside / "base")
    shipped = _lora_checkpoint(tmp_path / "shipped", "tiny")
    a, b = load_agent(inside), load_agent(shipped)
    assert a.act("user: hello") == b.act("user: hello")


# -- chat templates: bounded in size, time, memory and output ---------------------------------
RUNAWAY_TEMPLATES = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
    "{% endfor %}",
    "a gigabyte string": "{% set s = 'x' * 1000000000 %}{{ s|length }}",
    "a product of sizes": "{% set s = 'x' * 100000 %}{{ s|replace('', s) }}",
    "a padded string": "{{ 'x'.center(1000000000) }}",
    "a long prompt": "{{ 'x' * (MAX + 1) }}".replace("MAX", str(MAX_PROMPT_CHARS)),
    "a long source": "{# " + "x" * MAX_TEMPLATE_CHARS + " #}",
}


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MODEL_DIR)


@pytest.mark.parametrize("what", sorted(RUNAWAY_TEMPLATES))
def test_a_runaway_chat_template_is_refused_fast_in_one_line(what, tokenizer):
    tokenizer = copy.copy(tokenizer)
    tokenizer.chat_template = RUNAWAY_TEMPLATES[what]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(TemplateRefused, match=r"^model: its chat template .*: refusing it$"):
        render_chat(tokenizer, [{"role": "user", "content": "hi"}], "model")
    assert time.perf_counter() - start < RENDER_SECONDS + 3
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 2 * RENDER_MEMORY_BYTES >> 10


def test_a_template_that_fits_renders_as_transformers_renders_it(tokenizer):
    tokenizer = copy.copy(tokenizer)
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]
    tracer = sys.gettrace()
    assert render_chat(tokenizer, messages, "m") == tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert sys.gettrace() is tracer  # a debugger's or coverage's tracer is put back
    tokenizer.chat_template = "{{ raise_exception('no system role') }}"
    with pytest.raises(Exception, match="no system role"):  # the template's own error
        render_chat(tokenizer, messages, "m")


def _chat_checkpoint(where: Path, template: str) -> Path:
    from lm_helpers import save_tiny_llama
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    tokenizer.chat_template = template
    save_tiny_llama(tokenizer, where / "lm")
    (where / "config.json").write_text(json.dumps({"agent": "hf-chat"}))
    return where


@pytest.mark.parametrize("what", ["nested loops", "a gigabyte string"])
def test_submitting_a_checkpoint_with_a_runaway_template_is_refused_at_load(what, tmp_path, server):
    ckpt = _chat_checkpoint(tmp_path / "chat", RUNAWAY_TEMPLATES[what])
    store = LeaderboardStore(tmp_path / "board.db")
    start = time.perf_counter()
    outside, raised = _outside_reads(
        lambda: submit_checkpoint(ckpt, store, limit=1), ckpt, tmp_path / "board.db"
    )
    assert time.perf_counter() - start < RENDER_SECONDS + 20
    assert isinstance(raised, ResultsRejected) and "its chat template" in str(raised)
    assert "\n" not in str(raised) and outside == []


# -- fuzzing: hostile configs and templates of every kind --------------------------------------
def _paths(server: Path) -> st.SearchStrategy:
    """Values a hostile config puts where a path or a name goes."""
    named = [
        str(server / "bait-lm"),
        str(server / "bait-ckpt"),
        "../bait-ckpt",
        "bait-ckpt",
        "~",
        "/etc",
        "tiny",
        "sft-chat",
        "base",
        "./base",
        "base/../..",
        "a\x00b",
        "",
    ]
    junk = st.none() | st.booleans() | st.integers(-3, 10**6) | st.text(max_size=8)
    return st.sampled_from(named) | junk | st.lists(st.sampled_from(named), max_size=2)


TEMPLATE_PIECES = [
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>",
    "{% include '/etc/passwd' %}",
    "{% import '/etc/hosts' as h %}",
    "{% extends '../bait-lm/config.json' %}",
    "{{ ''.__class__.__mro__ }}",
    RUNAWAY_TEMPLATES["nested loops"],
    RUNAWAY_TEMPLATES["a gigabyte string"],
    "{{ messages|tojson }}",
]
FIELDS = {
    "lm": ["base_model", "base_sha256", "paradigm", "max_new_tokens", "env_id", "x"],
    "best-of-n": ["base", "n", "temperature", "env_id", "x"],
    "hf-chat": ["system_prompt", "max_new_tokens", "temperature", "tool_role", "x"],
    "sb3": ["net_arch", "algo", "state_features", "x"],
}
EXAMPLES = {"lm": 8, "best-of-n": 8, "hf-chat": 10, "sb3": 10}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """One valid checkpoint of each kind, copied and spoiled by each example."""
    root = tmp_path_factory.mktemp("sources")
    lora = _lora_checkpoint(root / "lm", "tiny")
    bon = root / "best-of-n"
    bon.mkdir()
    (bon / "config.json").write_text(json.dumps({"agent": "best-of-n", "base": "sft-chat"}))
    chat = _chat_checkpoint(root / "hf-chat", TEMPLATE_PIECES[0])
    return {"lm": lora, "best-of-n": bon, "hf-chat": chat, "sb3": SHIPPED / "sb3-ppo"}


def _set_template(ckpt: Path, template: str) -> None:
    lm = ckpt / "lm"
    (lm / "chat_template.jinja").write_text(template)
    config = json.loads((lm / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (lm / "tokenizer_config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("kind", KINDS)
def test_fuzz_hostile_configs_and_templates_read_nothing_outside(kind, sources, server):
    @settings(
        max_examples=EXAMPLES[kind],
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        field=st.sampled_from(FIELDS[kind]) | st.none(),  # None: the config as it was
        value=_paths(server),
        template=st.lists(st.sampled_from(TEMPLATE_PIECES), min_size=1, max_size=3).map("".join),
    )
    def check(field, value, template):
        ckpt = Path(tempfile.mkdtemp(dir=server.parent)) / "ckpt"
        shutil.copytree(sources[kind], ckpt)
        config = json.loads((ckpt / "config.json").read_text())
        if field is not None:
            (ckpt / "config.json").write_text(json.dumps({**config, field: value}))
        if kind == "hf-chat":
            _set_template(ckpt, template)
        start = time.perf_counter()
        outside, raised = _outside_reads(lambda: load_agent(ckpt), ckpt)
        assert outside == [], (field, value, template)
        assert raised is None or "\n" not in str(raised)
        assert time.perf_counter() - start < 3 * RENDER_SECONDS + 20

    check()
