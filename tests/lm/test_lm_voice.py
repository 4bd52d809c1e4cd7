"""The LM voice: the faithfulness check, resampling and fallback, batching, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import dialog_env  # noqa: F401  (registers the ids)
from agents import load_agent
from dialog_env.lm import TINY_MODEL_DIR
from dialog_env.tasks.booking.acts import Act
from dialog_env.tasks.booking.voice import TemplateVoice, describe_acts

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from conftest import REPO_ROOT  # noqa: E402
from lm_helpers import save_tiny_llama, word_tokenizer  # noqa: E402

from dialog_env.lm.threads import torch_threads  # noqa: E402
from dialog_env.lm.voice import LMVoice, check_sentence  # noqa: E402

needs_tiny = pytest.mark.skipif(
    not (TINY_MODEL_DIR / "model.safetensors").exists(), reason="no shipped model"
)
TURNS = [
    [Act.make("inform", area="north", food="thai")],
    [
        Act("affirm"),
        Act.make("request", phone="?", postcode="?"),
        Act.make("book", people="4", day="friday", time="19:30"),
    ],
    [Act.make("inform", price="dontcare", area="south")],
    [Act.make("book", time="18:00")],
    [Act("thank_bye")],
]


def play(env, seeds, agent=None) -> list[dict]:
    agent = agent or load_agent("expert")
    episodes = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        agent.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
        episodes.append({"turns": info["turns"], "metrics": info.get("metrics")})
    return episodes


@pytest.fixture(scope="module")
def random_llama(tmp_path_factory):
    """A randomly initialized Llama (another architecture than ours) with our tokenizer."""
    path = tmp_path_factory.mktemp("llama")
    tok = transformers.AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    return save_tiny_llama(tok, path, layers=2)


class ScriptedVoice(LMVoice):
    """An LMVoice whose 'model' writes given sentences in turn (each round of attempts
    takes one for every row still pending), to test the control flow."""

    def __init__(self, sentences, max_tries=3):
        self.max_tries, self.max_new_tokens = max_tries, 8
        self.task_voice = TemplateVoice()
        self.sentences, self.calls = list(sentences), 0

    def _prompt(self, acts):
        from dialog_env.tasks.booking.voice import delexicalize

        return "prompt", delexicalize(acts)[1]

    def decode(self, prompts, uniforms, accept=None):
        taken, pending = [None] * len(prompts), list(range(len(prompts)))
        for _ in range(uniforms.shape[1]):  # (rows, tries, tokens)
            if not pending:
                break
            self.calls += 1
            still = []
            for row in pending:
                text = self.sentences.pop(0)
                if accept is None or accept(row, text):
                    taken[row] = text
                else:
                    still.append(row)
            pending = still
        return taken


def test_check_sentence_requires_exact_placeholders_and_read_back():
    acts = [Act.make("inform", area="north", food="thai")]
    values = {"area": "north", "food": "thai"}
    booking = TemplateVoice()
    assert check_sentence("I want [food] food in the [area].", acts, values, booking)
    assert not check_sentence("I want [food] food.", acts, values, booking)  # a value left out
    assert not check_sentence("I want [food] food in the [area] [area].", acts, values, booking)
    assert not check_sentence(
        "I want [food] food in the [area]. Thanks, bye!", acts, values, booking
    )
    assert not check_sentence("I want [food] food in the [area] \u263a.", acts, values, booking)
    assert not check_sentence("", acts, values, booking)
    assert not check_sentence("I want [area] food.", [acts[0]], {"food": "thai"}, booking)


def test_chat_models_get_the_acts_in_plain_words():
    acts = [Act.make("inform", area="north", price="dontcare")]
    assert (
        describe_acts(acts)
        == "you want a restaurant with the area [area]; you do not mind the price"
    )


def test_resample_then_fall_back_counts():
    acts = [Act.make("inform", food="thai")]
    rng = np.random.default_rng(0)
    good = ScriptedVoice(["I want [area] food.", "Thai? [food] food, please.", "x"])
    assert good.voice(acts, rng) == ("Thai? thai food, please.", False)
    assert good.calls == 2  # the first sample failed the check, the second passed
    bad = ScriptedVoice(["nonsense"] * 3)
    text, fell_back = bad.voice(acts, rng)
    assert fell_back and bad.calls == 3
    assert text == TemplateVoice().voice(acts, rng)[0]


def test_batch_resamples_only_the_failures():
    voice = ScriptedVoice(["That sounds good.", "nope", "Pardon?"])
    out = voice.voice_batch(
        [[Act("affirm")], [Act("repeat")]], [np.random.default_rng(1), np.random.default_rng(2)]
    )
    assert out == [("That sounds good.", False), ("Pardon?", False)]
    assert voice.calls == 2


@pytest.fixture
def one_thread():
    with torch_threads(1):
        yield


@needs_tiny
def test_kv_cache_decode_equals_full_recompute(one_thread):
    voice = LMVoice(TINY_MODEL_DIR, TemplateVoice(), max_new_tokens=32)
    tok, model = voice.lm.tokenizer, voice.lm.model
    uniforms = torch.rand(
        3,
        voice.max_new_tokens,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    prompts = [voice._prompt(t)[0] for t in (TURNS[0], TURNS[2], TURNS[4])]
    cached = voice.decode(prompts, uniforms)
    for prompt, u, text in zip(prompts, uniforms, cached, strict=True):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        out = []
        for t in range(voice.max_new_tokens):  # no cache, no padding, one row
            with torch.no_grad():
                logits = model(torch.tensor([ids + out])).logits[0, -1].double()
            cdf = torch.softmax(logits, -1).cumsum(-1)
            nxt = int(torch.searchsorted(cdf, u[t] * cdf[-1]))
            if nxt in voice._stop_ids:
                break
            out.append(nxt)
        else:  # no stop token within the budget: an unfinished sentence is no sample
            out = []
        assert tok.decode(out, skip_special_tokens=True).strip() == text
        assert text  # these three prompts are voiced within the budget


@needs_tiny
def test_a_turn_does_not_depend_on_its_batch():
    voice = LMVoice(TINY_MODEL_DIR, TemplateVoice())
    alone = [voice.voice(t, np.random.default_rng(i)) for i, t in enumerate(TURNS)]
    together = voice.voice_batch(TURNS, [np.random.default_rng(i) for i in range(len(TURNS))])
    assert together == alone
    assert len({voice.voice(TURNS[0], np.random.default_rng(s))[0] for s in range(12)}) > 2


@needs_tiny
def test_with_the_memo_on_a_turn_is_decoded_once_and_voiced_the_same():
    from dialog_env.lm.voice import remember_turns

    voice = LMVoice(TINY_MODEL_DIR, TemplateVoice())
    calls = []
    decode = voice.decode
    voice.decode = lambda prompts, *rest: calls.append(len(prompts)) or decode(prompts, *rest)
    fresh = voice.voice_batch(TURNS, [np.random.default_rng(i) for i in range(len(TURNS))])
    decoded = sum(calls)
    assert remember_turns(True) is False  # off unless asked for (dialog-bench run asks)
    try:
        first = voice.voice_batch(TURNS, [np.random.default_rng(i) for i in range(len(TURNS))])
        assert sum(calls) == 2 * decoded
        again = voice.voice_batch(TURNS, [np.random.default_rng(i) for i in range(len(TURNS))])
        assert sum(calls) == 2 * decoded  # every turn remembered
        other = voice.voice(TURNS[0], np.random.default_rng(99))  # another seed: decoded
        assert sum(calls) > 2 * decoded
        thai, indian = (
            [Act.make("inform", food=food)] for food in ("thai", "indian")
        )  # the same delexicalized prompt, other values: other turns
        assert voice._memo_key(thai, 1) != voice._memo_key(indian, 1)
    finally:
        remember_turns(False)
    assert fresh == first == again and other[0]


@needs_tiny
def test_default_env_is_voiced_by_the_tiny_lm_and_reads_back():
    env = gym.make("Dialog-v1", split="test")
    assert isinstance(env.unwrapped.voice, LMVoice)
    assert env.unwrapped.voice.path == TINY_MODEL_DIR
    episodes = play(env, range(8))
    template = play(gym.make("Dialog-v1", split="test", user_model="template"), range(8))
    turns = sum(e["metrics"]["user_turns"] for e in episodes)
    fallbacks = sum(e["metrics"]["voice_fallbacks"] for e in episodes)
    assert fallbacks <= 0.2 * turns
    assert sum(e["metrics"]["success"] for e in episodes) >= 7
    user = lambda eps: [t["text"] for e in eps for t in e["turns"] if t["role"] == "user"]  # noqa: E731
    assert len(set(user(episodes))) > len(set(user(template)))


def test_any_causal_lm_dir_runs_episodes(random_llama):
    # A random model writes nonsense: every turn fails the check and falls back, counted.
    env = gym.make("Dialog-v1", user_model=str(random_llama))
    assert type(env.unwrapped.voice.lm.model).__name__ == "LlamaForCausalLM"
    episodes = play(env, range(2))
    template = play(gym.make("Dialog-v1", user_model="template"), range(2))
    for lm, tpl in zip(episodes, template, strict=True):
        assert lm["metrics"]["voice_fallbacks"] == lm["metrics"]["user_turns"] > 0
        # Booking references differ (the LM voice draws from np_random), the user does not.
        user = [[t for t in e["turns"] if t["role"] == "user"] for e in (lm, tpl)]
        assert user[0] == user[1]


def test_chat_model_is_prompted_in_plain_words(tmp_path):
    tok = word_tokenizer(["I", "want", "food", "[", "]", "area", "thai", "."])
    tok.chat_template = (
        "{% for m in messages %}<s>{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<s>{% endif %}"
    )
    save_tiny_llama(tok, tmp_path)
    voice = LMVoice(tmp_path, TemplateVoice(), max_tries=2, max_new_tokens=8)
    assert voice.style == "chat"
    prompt, _ = voice._prompt(TURNS[0])
    assert "[area]" in prompt and "[food]" in prompt and "restaurant" in prompt
    text, fell_back = voice.voice(TURNS[0], np.random.default_rng(0))
    assert fell_back and "north" in text and "thai" in text


@needs_tiny
def test_pickled_env_continues_identically():
    env = gym.make("Dialog-v1")
    expert = load_agent("expert")
    obs, _ = env.reset(seed=3)
    expert.reset(seed=3)
    obs, *_ = env.step(expert.act(obs))
    twin = pickle.loads(pickle.dumps(env))
    assert twin.unwrapped.voice.lm is env.unwrapped.voice.lm  # shared, not copied
    for _ in range(3):
        action = expert.act(obs)
        a, b = env.step(action), twin.step(action)
        assert a[0] == b[0] and a[1:4] == b[1:4]
        obs = a[0]
        if a[2]:
            break


_CHILD = """
import hashlib, json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
import gymnasium as gym, dialog_env
from agents import load_agent
sys.path[:0] = sys.argv[2:]  # this folder, the checkout and tests/ (for lm_helpers)
from test_lm_voice import play
eps = play(gym.make("Dialog-v1", split="test"), range(6))
print(hashlib.sha256(json.dumps(eps, sort_keys=True).encode()).hexdigest())
"""


@pytest.mark.slow  # tests/env/test_env_contract.py checks the same for every voice, by default
@needs_tiny
def test_lm_voice_is_deterministic_across_processes():
    # Two other processes, with other hash seeds and 1 or 2 torch threads, run side by side.
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(threads),
                os.path.dirname(__file__),
                str(REPO_ROOT),
                str(REPO_ROOT / "tests"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": str(17 + threads)},
        )
        for threads in (1, 2)
    ]
    here = hashlib.sha256(
        json.dumps(play(gym.make("Dialog-v1", split="test"), range(6)), sort_keys=True).encode()
    ).hexdigest()
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert out.strip().splitlines()[-1] == here


def test_import_dialog_env_stays_light():
    code = (
        "import sys, gymnasium as gym, dialog_env, dialog_env.lm; "
        "gym.make('Dialog-v1', user_model='template').reset(seed=0); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@needs_tiny
def test_a_prompt_is_prefilled_once_and_its_kept_keys_give_the_same_turns(monkeypatch):
    from dialog_env.lm import generation

    computed = []
    prompt_heads = generation.prompt_heads
    monkeypatch.setattr(
        generation, "prompt_heads", lambda *a: computed.append(1) or prompt_heads(*a)
    )
    voice = LMVoice(TINY_MODEL_DIR, TemplateVoice())
    rngs = [np.random.default_rng(i) for i in range(len(TURNS))]
    first = voice.voice_batch(TURNS, rngs)
    prompts = {voice._prompt(t)[0] for t in TURNS}
    assert len(voice._heads) == len(computed) == len(prompts)  # one per distinct prompt
    again = voice.voice_batch(TURNS, [np.random.default_rng(i) for i in range(len(TURNS))])
    assert again == first
    assert len(computed) == len(prompts)  # none computed anew
    fresh = LMVoice(TINY_MODEL_DIR, TemplateVoice())
    backwards = [np.random.default_rng(i) for i in range(len(TURNS))][::-1]
    assert fresh.voice_batch(TURNS[::-1], backwards) == first[::-1]
