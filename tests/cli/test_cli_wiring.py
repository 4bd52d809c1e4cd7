"""The command line reaches the code: every flag of ``train``, ``demos``, ``diagnose`` and
``submit --replace`` arrives in the config or call it names, and tiny real runs of the
commands write what the README says.

The trainers' configs are checked whole: each test sets every field of the dataclass
to a value other than its default, so a field the CLI cannot set fails here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from leaderboard_helpers import SHORT, real_results, write_json

from baselines.demos import generate_demos, load_demos
from baselines.diagnose import format_table
from baselines.ppo_config import PPOConfig
from baselines.sb3_train import SB3Config
from baselines.sft import SFTConfig
from dialog_bench.cli import main
from leaderboard.store import LeaderboardStore

REPO = REPO_ROOT


def capture(monkeypatch, target: str, returns=None) -> list:
    """Replace ``target`` ("module.function") by a recorder of its positional arguments."""
    calls = []

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return returns

    monkeypatch.setattr(target, record)
    return calls


def demo_files(directory: Path, *names: str, env_id: str = "Dialog-v1") -> None:
    """Empty demo files with the metadata that names their env (what the CLI checks first)."""
    for name in names:
        (directory / name).write_text("")
        meta = (directory / name).with_suffix(".meta.json")
        meta.write_text(json.dumps({"env_id": env_id}))


def assert_every_field_set(config, defaults, derived: tuple[str, ...] = ()) -> None:
    unset = [
        f.name
        for f in dataclasses.fields(config)
        if f.name not in derived and getattr(config, f.name) == getattr(defaults, f.name)
    ]
    assert not unset, f"the command line left these fields at their default: {unset}"


# -- train -------------------------------------------------------------------------------
def test_train_sft_flags_reach_the_config(monkeypatch, tmp_path):
    monkeypatch.setattr("dialog_bench.prepare.require_extra", lambda *a: None)  # wiring only
    calls = capture(monkeypatch, "baselines.sft.train_sft", returns=tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    demo_files(tmp_path, "a.jsonl", "b.jsonl", env_id="Dialog-Chat-v1")
    argv = ["train", "sft", "--demos", "a.jsonl", "b.jsonl", "--filter", "success"]
    argv += ["--init", "lm", "--steps", "7", "--batch-size", "3", "--lr", "0.5"]
    argv += ["--warmup", "2", "--seed", "9", "--eval-every", "4", "--eval-episodes", "5"]
    argv += ["--heldout", "6", "--no-freeze-values", "--spell-codes", "--no-progress"]
    argv += ["--out", "ck", "--logdir", "lg", "--lora", "4", "--lora-alpha", "16"]
    argv += ["--lora-dropout", "0.1", "--env-id", "Dialog-Chat-v1", "--init-sha256", "ab" * 32]
    assert main(argv) == 0
    ((config,), _) = calls[0]
    assert config == SFTConfig(
        demos=[Path("a.jsonl"), Path("b.jsonl")],
        env_id="Dialog-Chat-v1",
        filter="success",
        init=Path("lm"),
        init_sha256="ab" * 32,
        paradigm="filtered-sft",  # what --filter success trains: the README's row
        steps=7,
        batch_size=3,
        lr=0.5,
        warmup=2,
        seed=9,
        eval_every=4,
        eval_episodes=5,
        heldout=6,
        freeze_values=False,
        spell_codes=True,
        out=Path("ck"),
        logdir=Path("lg"),
        progress=False,
        lora=4,
        lora_alpha=16.0,
        lora_dropout=0.1,
    )
    assert_every_field_set(config, SFTConfig())


def test_train_sft_defaults_are_the_configs(monkeypatch, tmp_path):
    calls = capture(monkeypatch, "baselines.sft.train_sft", returns=tmp_path)
    monkeypatch.chdir(tmp_path)
    demo_files(tmp_path, "d.jsonl")
    assert main(["train", "sft", "--demos", "d.jsonl", "--out", "ck"]) == 0
    ((config,), _) = calls[0]
    assert config == dataclasses.replace(SFTConfig(), demos=[Path("d.jsonl")], out=Path("ck"))
    assert config.paradigm == "sft"


def test_train_sb3_flags_reach_the_config(monkeypatch, tmp_path):
    calls = capture(monkeypatch, "baselines.sb3_train.train_sb3", returns=tmp_path)
    argv = ["train", "sb3", "--algo", "dqn", "--steps", "900", "--n-envs", "3", "--seed", "4"]
    argv += ["--net-arch", "32", "16", "8", "--user-model", "tiny", "--eval-every", "300"]
    argv += ["--eval-episodes", "7", "--out", "ck", "--logdir", "lg", "--nlu", "tagger"]
    assert main(argv) == 0
    ((config,), _) = calls[0]
    assert config == SB3Config(
        algo="dqn",
        total_steps=900,
        n_envs=3,
        seed=4,
        net_arch=(32, 16, 8),
        user_model="tiny",
        eval_every=300,
        eval_episodes=7,
        out=Path("ck"),
        logdir=Path("lg"),
        nlu="tagger",
    )
    assert_every_field_set(config, SB3Config())
    assert main(["train", "sb3", "--algo", "a2c"]) == 0  # the out dir follows the algorithm
    assert calls[1][0][0].out == Path("runs/sb3-a2c")


#: A value other than the default for every PPOConfig field, as typed on the command line.
PPO_FLAGS = {
    "init": ("sft", "sft"),
    "init_sha256": ("ab" * 32, "ab" * 32),
    "env_id": ("Dialog-Chat-v1", "Dialog-Chat-v1"),
    "out": ("ck", Path("ck")),
    "iterations": ("3", 3),
    "num_envs": ("5", 5),
    "messages_per_env": ("6", 6),
    "epochs": ("2", 2),
    "minibatch_messages": ("9", 9),
    "group_by_length": (None, False),
    "lr": ("0.25", 0.25),
    "gamma": ("0.9", 0.9),
    "lam": ("0.5", 0.5),
    "clip": ("0.3", 0.3),
    "vf_coef": ("0.7", 0.7),
    "vf_clip": ("0.4", 0.4),
    "ent_coef": ("0.05", 0.05),
    "max_grad_norm": ("2.5", 2.5),
    "target_kl": ("0.0", 0.0),
    "kl_init": ("0.3", 0.3),
    "kl_target": ("4.0", 4.0),
    "kl_horizon": ("77", 77),
    "user_model": ("template", "template"),
    "seed": ("11", 11),
    "eval_every": ("8", 8),
    "eval_episodes": ("0", 0),
    "threads": ("2", 2),
    "logdir": ("lg", Path("lg")),
    "progress": (None, False),
    "lora": ("8", 8),
    "lora_alpha": ("4.0", 4.0),
    "lora_dropout": ("0.05", 0.05),
}


def test_train_ppo_flags_reach_the_config(monkeypatch, tmp_path):
    monkeypatch.setattr("dialog_bench.prepare.require_extra", lambda *a: None)  # wiring only
    assert set(PPO_FLAGS) == {f.name for f in dataclasses.fields(PPOConfig)}
    calls = capture(monkeypatch, "baselines.token_ppo.train_ppo", returns=tmp_path)
    argv = ["train", "ppo"]
    for name, (typed, _) in PPO_FLAGS.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag, typed] if typed is not None else ["--no-" + flag[2:]]
    assert main(argv) == 0
    ((config,), _) = calls[0]
    assert config == PPOConfig(**{name: value for name, (_, value) in PPO_FLAGS.items()})
    assert_every_field_set(config, PPOConfig())


def test_train_sb3_and_ppo_tiny_real_runs_write_what_the_flags_say(
    tmp_path, capsys, one_torch_thread
):
    sb3 = tmp_path / "sb3"
    argv = ["train", "sb3", "--algo", "a2c", "--steps", "64", "--n-envs", "2", "--seed", "3"]
    argv += ["--net-arch", "8", "--eval-every", "64", "--eval-episodes", "1"]
    argv += ["--out", str(sb3), "--logdir", str(tmp_path / "runs")]
    assert main(argv) == 0
    manifest = json.loads((sb3 / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["budget"]["env_steps"] == 64
    assert manifest["config"]["net_arch"] == [8] and manifest["config"]["n_envs"] == 2
    assert json.loads((sb3 / "config.json").read_text())["net_arch"] == [8]

    ppo = tmp_path / "ppo"
    argv = ["train", "ppo", "--iterations", "1", "--num-envs", "2", "--messages-per-env", "1"]
    argv += ["--epochs", "1", "--minibatch-messages", "2", "--user-model", "template"]
    argv += ["--eval-episodes", "0", "--seed", "5", "--no-progress"]
    argv += ["--out", str(ppo), "--logdir", str(tmp_path / "runs")]
    assert main(argv) == 0
    manifest = json.loads((ppo / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["budget"]["env_steps"] == 2
    assert manifest["config"]["user_model"] == "template"
    assert json.loads((ppo / "config.json").read_text())["paradigm"] == "rl"
    assert capsys.readouterr().out.splitlines()[-2:] == [f"wrote {sb3}", f"wrote {ppo}"]


# -- demos -------------------------------------------------------------------------------
def test_demos_flags_reach_the_generator(monkeypatch, tmp_path):
    meta = {"success_rate": 0.0, "mean_return": 0.0}
    calls = capture(monkeypatch, "baselines.demos.generate_demos", returns=([], meta))
    monkeypatch.setattr("baselines.demos.write_demos", lambda *a: tmp_path / "x.meta.json")
    argv = ["demos", "--generator", "noisy-expert", "--num-episodes", "4", "--first-seed", "70"]
    argv += ["--env-id", "Dialog-v1", "--user-model", "template", "--batch-size", "3"]
    assert main([*argv, "--out", str(tmp_path / "d.jsonl")]) == 0
    ((generator, seeds, env_id), kwargs) = calls[0]
    assert (generator, list(seeds), env_id) == ("noisy-expert", [70, 71, 72, 73], "Dialog-v1")
    assert kwargs == {"batch_size": 3, "user_model": "template"}


def test_demos_tiny_real_run(tmp_path, capsys):
    out = tmp_path / "noisy.jsonl"
    argv = ["demos", "--generator", "noisy-expert", "--num-episodes", "3", "--first-seed", "5"]
    argv += ["--user-model", "template", "--batch-size", "2", "--out", str(out)]
    assert main(argv) == 0
    records, meta = load_demos(out)
    want, _ = generate_demos("noisy-expert", range(5, 8), progress=False, user_model="template")
    assert list(records) == want
    assert meta["generator"] == "noisy-expert" and meta["seeds"] == {
        "first": 5,
        "last": 7,
        "count": 3,
    }
    assert meta["env_spec"]["kwargs"]["user_model"] == "template"
    assert capsys.readouterr().out.startswith(f"wrote 3 demos to {out} (noisy.meta.json)")
    assert main(["demos", "--num-episodes", "0", "--out", str(out)]) == 2
    assert "--num-episodes must be at least 1" in capsys.readouterr().err


def test_demos_env_kwargs_reach_the_env_and_its_spec(tmp_path, capsys):
    out = tmp_path / "shuffled.jsonl"
    argv = ["demos", "--num-episodes", "2", "--user-model", "template", "--out", str(out)]
    assert main([*argv, "--env-kwargs", '{"venue_names": "shuffled"}']) == 0
    records, meta = load_demos(out)
    assert meta["env_spec"]["kwargs"]["venue_names"] == "shuffled"
    plain, _ = generate_demos("expert", range(2), progress=False, user_model="template")
    assert list(records) != plain  # other names in the results
    assert main([*argv, "--env-kwargs", '{"split": "test"}']) == 2
    assert "without split or user_model" in capsys.readouterr().err


# -- diagnose ----------------------------------------------------------------------------
def test_diagnose_flags_reach_diagnose_and_the_figures_are_printed_and_written(
    monkeypatch, tmp_path, capsys
):
    figures = {"a": {"tool_call": {"book.day": 0.5}, "message": {"ref": 0.25}}}
    calls = capture(monkeypatch, "baselines.diagnose.diagnose", returns=figures)
    monkeypatch.chdir(tmp_path)
    demo_files(tmp_path, "d.jsonl")
    written = tmp_path / "figures.json"
    argv = ["diagnose", "a", "b", "--demos", "d.jsonl", "--limit", "9", "--json", str(written)]
    assert main(argv) == 0
    assert calls == [((["a", "b"], Path("d.jsonl"), 9), {})]
    assert capsys.readouterr().out == format_table(figures) + "\n"
    assert json.loads(written.read_text()) == figures


def test_diagnose_tiny_real_run_on_a_shipped_checkpoint(tmp_path, capsys):
    from baselines.demos import write_demos
    from baselines.diagnose import diagnose

    demos = tmp_path / "heldout.jsonl"
    seeds = range(900_000, 900_002)  # the README's held-out demo seeds
    write_demos(demos, *generate_demos("expert", seeds, progress=False, user_model="template"), "t")
    agent = str(REPO / "baselines/checkpoints/sft-expert")
    written = tmp_path / "figures.json"
    argv = ["diagnose", agent, "--demos", str(demos), "--limit", "1", "--json", str(written)]
    assert main(argv) == 0
    figures = json.loads(written.read_text())
    assert figures == diagnose([agent], demos, limit=1)
    assert capsys.readouterr().out == format_table(figures) + "\n"
    assert main(["diagnose", agent, "--demos", str(tmp_path / "none.jsonl")]) == 2
    assert "no demos file at" in capsys.readouterr().err


def test_diagnose_results_counts_failures_that_name_a_venue_no_result_showed(tmp_path, capsys):
    from baselines.diagnose import unseen_venues

    results = real_results("expert")
    episode = results["episodes"][0]
    made_up = {"role": "assistant", "text": "The Velvet Griddle is lovely."}
    shown = next(t["text"] for t in episode["turns"] if t["text"].startswith("[result] search"))
    read = shown.split('name="')[1].split('"')[0]
    episode["turns"] += [{"role": "assistant", "text": f"Try {read}."}]
    results["episodes"][1]["turns"].append(made_up)
    results["episodes"][1]["success"] = False
    path = write_json(tmp_path / "r.json", results)
    counts = unseen_venues(path)
    assert counts["failed"] == 1 and counts["failed_naming_unseen"] == 1
    assert counts["succeeded_naming_unseen"] == 0 and counts["share_of_failures"] == 1.0
    assert main(["diagnose", "--results", str(path)]) == 0
    assert "1 (1.00)" in capsys.readouterr().out
    assert main(["diagnose"]) == 2 and "or --results" in capsys.readouterr().err


def test_diagnose_play_scores_agents_on_train_episodes_of_an_env_variant(capsys):
    argv = ["diagnose", "expert", "--play", "2", "--env-kwargs", '{"venue_names": "shuffled"}']
    assert main([*argv, "--first-seed", "5"]) == 0
    assert "expert" in capsys.readouterr().out
    assert main(["diagnose", "expert", "--play", "2", "--env-kwargs", "[1]"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err


# -- submit --replace --------------------------------------------------------------------
def test_submit_replace_swaps_the_entry_and_only_with_the_flag(tmp_path, capsys):
    db = tmp_path / "lb.sqlite"
    expert = write_json(tmp_path / "expert.json", real_results("expert"))
    random = write_json(tmp_path / "random.json", real_results("random"))
    submit = ["submit", "--db", str(db), "--name", "mine", "--quiet"]
    assert main([*submit, str(expert)]) == 0
    assert main([*submit, str(random)]) == 1
    assert "already has an entry named 'mine'" in capsys.readouterr().err
    (entry,) = LeaderboardStore(db).entries()
    assert all(entry.successes) and len(entry.successes) == SHORT

    assert main([*submit, str(random), "--replace"]) == 0
    assert capsys.readouterr().out.startswith(f"accepted: mine on Dialog-v1/test[:{SHORT}]")
    (entry,) = LeaderboardStore(db).entries()
    assert entry.name == "mine" and entry.agent == "random"
    assert list(entry.successes) == [ep["success"] for ep in real_results("random")["episodes"]]


def test_every_submit_checkpoint_flag_reaches_the_call(tmp_path, monkeypatch, capsys):
    from leaderboard.submit import SubmitOutcome

    outcome = SubmitOutcome(1, "mine", "Dialog-v1/dev[:7]", 7, 1.0, 0.9, "verified")
    calls = capture(monkeypatch, "leaderboard.submit.submit_checkpoint", outcome)
    db, ckpt = tmp_path / "lb.sqlite", tmp_path / "ckpt"
    argv = ["submit", "--checkpoint", str(ckpt), "--db", str(db), "--name", "mine"]
    argv += ["--replace", "--env-id", "Dialog-v1", "--episodes", "dev", "--limit", "7"]
    assert main([*argv, "--batch-size", "3", "--quiet"]) == 0
    ((args, kwargs),) = calls
    assert args[0] == ckpt and args[1].path == db
    assert kwargs == {
        "env_id": "Dialog-v1",
        "episodes": "dev",
        "limit": 7,
        "name": "mine",
        "replace": True,
        "batch_size": 3,
        "progress": False,
    }
    assert capsys.readouterr().out == outcome.summary() + "\n"


@pytest.mark.parametrize("command", ["train", "demos", "diagnose", "submit"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: dialog-bench {command}")
