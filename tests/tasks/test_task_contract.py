"""The Task protocol, checked on every registered task, and the layers that know tasks only
through it (``dialog_env.lm``, ``dialog_env.wrappers``).

A new task in ``dialog_env.tasks.TASKS`` joins every test here by itself.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

from dialog_env.lm.user_model import make_user_voice
from dialog_env.tasks import TASKS, Task, TaskStep, TaskVoice, Tracker, make_task
from dialog_env.text import Turn
from dialog_env.voicing import drive

ROOT = REPO_ROOT
TASK_FREE_PACKAGES = ("dialog_env/lm", "dialog_env/wrappers")
SEEDS = range(6)


class RecordingVoice:
    """The task's template voice, keeping every turn's acts it was asked to voice."""

    def __init__(self, task_voice: TaskVoice):
        self.task_voice, self.turns = task_voice, []

    def voice(self, acts, rng):
        self.turns.append(list(acts))
        return self.task_voice.voice(acts, rng)


def play(task: Task, seed: int, steps: int = 12) -> list:
    """An episode driven by the task's own assistant acts, each realized from the tracked
    state; returns everything the env would see."""
    rng = np.random.default_rng(seed)
    tracker = task.new_tracker()
    turns = task.reset(rng)
    seen: list[object] = [list(turns)]
    for step in range(steps):
        tracker.sync([t.as_dict() for t in turns])
        message = task.realize(step % len(task.assistant_acts), tracker.state)
        outcome = task.step(message, rng)
        assert isinstance(outcome, TaskStep)
        turns = [*turns, Turn("assistant", message), *outcome.turns]
        seen.append((message, outcome))
        if outcome.terminated:
            break
    seen.append(task.summary())
    return seen


@pytest.fixture(params=sorted(TASKS))
def task_name(request) -> str:
    return request.param


def test_the_task_satisfies_the_protocol(task_name):
    task = make_task(task_name)
    assert isinstance(task, Task)
    assert task.name == task_name
    assert isinstance(task.template_voice, TaskVoice)
    assert task.voice is task.template_voice  # no voice given: the task's template
    assert isinstance(task.new_tracker(), Tracker)
    assert len(task.assistant_acts) > 0 and len(task.state_features) > 0
    assert isinstance(task.template_voice.persona, str) and task.template_voice.persona
    tokens = task.template_voice.placeholder_tokens
    assert tokens and all(t.startswith("[") and t.endswith("]") for t in tokens)


def test_template_user_model_is_the_tasks_own_voice(task_name):
    task = make_task(task_name)
    assert make_user_voice("template", task) is task.template_voice


def test_episodes_are_deterministic_per_seed(task_name):
    for seed in SEEDS:
        assert play(make_task(task_name), seed) == play(make_task(task_name), seed)
    episodes = [play(make_task(task_name), seed) for seed in SEEDS]
    assert len({repr(e[0]) for e in episodes}) > 1  # the seed matters


def test_stepping_generators_play_what_reset_and_step_play(task_name):
    direct, stepped = make_task(task_name), make_task(task_name)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert direct.reset(a) == drive(stepped.reset_steps(b), stepped.voice)
    message = direct.realize(0, direct.new_tracker().state)
    assert direct.step(message, a) == drive(stepped.step_steps(message, b), stepped.voice)
    assert direct.summary() == stepped.summary()


def test_state_vectors_fit_the_state_features(task_name):
    task = make_task(task_name)
    rng = np.random.default_rng(0)
    turns = [t.as_dict() for t in task.reset(rng)]
    tracker = task.new_tracker()
    vector = task.state_vector(tracker.sync(turns))
    assert vector.shape == (len(task.state_features),) and vector.dtype == np.float32
    assert ((vector >= 0) & (vector <= 1)).all()
    tracker.reset()
    assert (task.state_vector(tracker.sync(turns)) == vector).all()


def test_summary_holds_the_metrics_the_env_reports(task_name):
    goal, metrics = play(make_task(task_name), 0)[-1]
    assert isinstance(goal, dict)
    assert {"success", "turns", "user_turns", "voice_fallbacks"} <= set(metrics)


def test_the_template_voice_says_what_the_parser_reads_back(task_name):
    """What the LM voice relies on: the template sentence of every user turn holds the
    turn's placeholders and, filled, reads back as its acts."""
    task = make_task(task_name)
    recorder = task.voice = RecordingVoice(task.template_voice)
    for seed in SEEDS:
        play(task, seed)
    voice = task.template_voice
    assert recorder.turns
    for acts in recorder.turns:
        _, values = voice.delexicalize(acts)
        sentence = voice.template(acts)
        assert sorted(voice.placeholders(sentence)) == sorted(values), acts
        assert voice.reads_back(voice.fill(sentence, values), acts), acts
        assert voice.describe(acts)


# What lm/ and wrappers/ import is read from their source in tests/test_layering.py;
# this test checks what importing them loads.
def test_importing_lm_and_wrappers_loads_no_task():
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in TASK_FREE_PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('dialog_env.tasks.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
