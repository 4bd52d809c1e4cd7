"""The command line as a newcomer meets it: no command writes into what ships unless told
to, every id plays or refuses in one line, names and tasks are honoured everywhere, and
errors and help are short and the subcommand's own.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from dialog_bench.cli import build_parser, main
from dialog_bench.parsers import is_inside, leaf_parsers, output_defaults

REPO = REPO_ROOT
PACKAGES = ("dialog_env", "agents", "baselines", "leaderboard", "dialog_bench")


def shipped_trees() -> list[Path]:
    """The installed packages' directories and the docs beside them: what ships."""
    roots = [Path(next(iter(find_spec(p).submodule_search_locations))) for p in PACKAGES]
    return [r.resolve() for r in roots] + [roots[0].parent.resolve() / "docs"]


# -- 1. default outputs lie outside what ships ----------------------------------------------
@pytest.mark.parametrize("cwd", ["repo", "elsewhere"])
def test_no_default_output_lies_in_the_package_tree(cwd, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO if cwd == "repo" else tmp_path)
    defaults = output_defaults(build_parser())
    assert "overopt" in defaults and "pretrain" in defaults  # the walk reaches them
    inside = {
        f"{command} --{dest}": value
        for command, outputs in defaults.items()
        for dest, value in outputs.items()
        if is_inside(Path(value), shipped_trees())
    }
    assert not inside, f"default outputs inside the package tree: {inside}"


def test_overopt_writes_beside_the_user_and_its_help_names_no_package_path(
    tmp_path, monkeypatch, capsys
):
    manifest = {"command": "dialog-bench train grpo ...", "config": {"beta": 0.1}}
    manifest["curve"] = [
        {"iteration": i, "kl": kl, "dev_gold": g, "dev_return": p}
        for i, (kl, g, p) in enumerate([(0.0, 0.3, 0.1), (4.0, 0.4, 0.3)])
    ]
    ckpt = tmp_path / "rl"
    ckpt.mkdir()
    (ckpt / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.chdir(tmp_path)
    assert main(["overopt", str(ckpt)]) == 0
    assert (tmp_path / "overoptimization.json").is_file()
    assert (tmp_path / "overoptimization.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SystemExit):
        main(["overopt", "--help"])
    shown = capsys.readouterr().out
    assert str(REPO) not in shown and "leaderboard/overoptimization.json" in shown


def test_every_leaf_parser_is_reached():
    leaves = leaf_parsers(build_parser())
    assert {"train sft", "train grpo", "train rm", "evaluate", "play", "overopt"} <= set(leaves)


# -- 2. unknown env ids: one line everywhere -------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["play", "--agent", "expert"],
        ["evaluate", "expert", "--limit", "1"],
        ["submit", "--checkpoint", "sft-expert", "--limit", "1"],
        ["demos", "--out", "d.jsonl", "--num-episodes", "1"],
        ["run", "--limit", "1"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_unknown_env_id_is_one_line_in_every_command(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--env-id", "Dialog-v9"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "unknown env id 'Dialog-v9'" in captured.err
    assert captured.err.startswith(f"dialog-bench {argv[0]}: error:")
    assert list(tmp_path.iterdir()) == []  # nothing written


# -- 3. one torch thread for the tiny models -------------------------------------------------
DECODING = {
    "play": "agents.play.main",
    "diagnose": "baselines.diagnose.main",
    "evaluate": "leaderboard.evaluate.main",
    "submit": "leaderboard.submit.main",
}


@pytest.mark.parametrize("command", DECODING)
def test_commands_that_decode_run_one_torch_thread_unless_told(command, monkeypatch, capsys):
    import torch

    chosen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    monkeypatch.setattr(DECODING[command], lambda args: 0)
    positional = {"evaluate": ["expert"], "submit": ["--checkpoint", "sft-expert"]}.get(command, [])
    assert main([command, *positional]) == 0 and chosen == [1]
    assert main([command, *positional, "--threads", "3"]) == 0 and chosen == [1, 3]
    assert main([command, *positional, "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
    if command == "submit":  # a results file is replayed: no torch to set up
        assert main(["submit", "r.json"]) == 0 and chosen == [1, 3]


def test_a_trainer_keeps_its_own_threads_flag(monkeypatch):
    import torch

    chosen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    monkeypatch.setattr("baselines.token_ppo.train_ppo", lambda config: config)
    assert main(["train", "ppo", "--threads", "2", "--out", "ck"]) == 0
    assert chosen == []  # the CLI leaves a trainer's threads to the trainer


# -- 4. names and tasks honoured everywhere --------------------------------------------------
def published(env_dir: str, agent: str, n: int = 3) -> dict:
    results = json.loads((REPO / "leaderboard/results" / env_dir / f"{agent}.json").read_text())
    return {"header": results["header"], "episodes": results["episodes"][:n]}


def test_evaluate_plays_a_checkpoints_own_env_and_reports_gold(monkeypatch, tmp_path, capsys):
    results = published("Dialog-Chat-v1", "sft-chat")
    played = []

    def evaluate_agent(agent, episode_set, **kwargs):
        played.append(episode_set.env_id)
        return results

    monkeypatch.setattr("leaderboard.evaluate.evaluate_agent", evaluate_agent)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "sft-chat", "--limit", "3", "--quiet"]) == 0
    assert played == ["Dialog-Chat-v1"]
    golds = [ep["metrics"]["mean_gold"] for ep in results["episodes"]]
    assert f"mean gold {sum(golds) / 3:.3f}" in capsys.readouterr().out
    assert main(["evaluate", "sft-expert", "--limit", "3", "--quiet"]) == 0
    assert played[-1] == "Dialog-v1"
    assert main(["evaluate", "chat-expert", "--limit", "3", "--quiet"]) == 0
    assert played[-1] == "Dialog-Chat-v1"
    for argv in (["evaluate", "sft-chat"], ["submit", "--checkpoint", "sft-chat"]):
        assert main([*argv, "--env-id", "Dialog-v1", "--limit", "3"]) == 2
        assert "plays the chat task, not Dialog-v1" in capsys.readouterr().err
    assert len(played) == 3


def test_play_plays_a_checkpoints_own_env(capsys):
    assert main(["play", "--agent", "sft-chat", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "mean_gold=" in out and "(gold " in out and "; RM " in out


def test_shipped_names_work_for_submit_and_train_from_any_directory(monkeypatch, tmp_path, capsys):
    from agents import shipped_checkpoints
    from leaderboard.submit import SubmitOutcome

    monkeypatch.chdir(tmp_path)
    shipped = shipped_checkpoints()
    outcome = SubmitOutcome(1, "x", "Dialog-Chat-v1/test[:2]", 2, 1.0, 0.9, "verified")
    calls = []
    monkeypatch.setattr(
        "leaderboard.submit.submit_checkpoint", lambda *a, **k: calls.append((a, k)) or outcome
    )
    assert main(["submit", "--checkpoint", "sft-chat", "--limit", "2", "--quiet"]) == 0
    ((args, kwargs),) = calls
    assert args[0] == shipped["sft-chat"] and kwargs["env_id"] == "Dialog-Chat-v1"

    configs = []
    monkeypatch.setattr("baselines.sft.train_sft", lambda config: configs.append(config))
    demos = tmp_path / "chat.jsonl"
    demos.write_text("")
    (tmp_path / "chat.meta.json").write_text(json.dumps({"env_id": "Dialog-Chat-v1"}))
    argv = ["train", "sft", "--demos", str(demos), "--env-id", "Dialog-Chat-v1"]
    assert main([*argv, "--init", "sft-chat", "--out", "ck"]) == 0
    assert configs[0].init == shipped["sft-chat"]
    capsys.readouterr()


def test_data_of_another_task_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("baselines.sft.train_sft", lambda config: pytest.fail("trained"))
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text("")
    (tmp_path / "prefs.meta.json").write_text(json.dumps({"env_id": "Dialog-Chat-v1"}))
    assert main(["train", "sft", "--demos", str(prefs), "--out", "ck"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds chat data" in err and "--env-id Dialog-Chat-v1" in err

    argv = ["demos", "--generator", "expert", "--env-id", "Dialog-Chat-v1", "--out", "d.jsonl"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plays the booking task, not Dialog-Chat-v1" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefs.jsonl", "prefs.meta.json"]


# -- 5. errors and help ----------------------------------------------------------------------
def test_a_missing_extra_is_one_line_before_any_work(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "minari", None)  # as if not installed
    argv = ["demos", "--num-episodes", "1", "--out", "d.jsonl", "--minari", "x/y-v0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dialog-bench[minari]'" in err
    assert list(tmp_path.iterdir()) == []  # checked before playing and writing the demos
    monkeypatch.setitem(sys.modules, "peft", None)
    assert main(["train", "ppo", "--lora", "4", "--out", "ck"]) == 2
    assert "pip install 'dialog-bench[peft]'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["ray", "datasets", "somebug"])
def test_an_extra_missing_inside_a_command_is_one_line_and_a_bug_keeps_its_traceback(
    name, monkeypatch, capsys
):
    def missing(args):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr("leaderboard.agents_list.main", missing)
    if name == "somebug":
        with pytest.raises(ModuleNotFoundError):
            main(["agents"])
        return
    assert main(["agents"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'dialog-bench[{name}]'" in err


def test_the_count_of_demos_is_num_episodes_and_episodes_a_deprecated_alias(
    monkeypatch, tmp_path, capsys
):
    meta = {"success_rate": 0.0, "mean_return": 0.0}
    seen = []
    monkeypatch.setattr(
        "baselines.demos.generate_demos", lambda g, seeds, *a, **k: seen.append(seeds) or ([], meta)
    )
    monkeypatch.setattr("baselines.demos.write_demos", lambda *a: tmp_path / "d.meta.json")
    out = ["--out", str(tmp_path / "d.jsonl")]
    assert main(["demos", "--num-episodes", "3", *out]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(["demos", "--episodes", "2", *out]) == 0
    assert seen == [range(0, 3), range(0, 2)]
    (notice,) = capsys.readouterr().err.splitlines()
    assert notice == (
        "dialog-bench demos: --episodes is deprecated, use --num-episodes (the old name goes "
        "in the next release)"
    )
    with pytest.raises(SystemExit):
        main(["prefs", "--help"])
    assert "--num-episodes N, --episodes N" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["evaluate", "expert", "--bogus"], ["train", "sft", "--demos", "d", "--out", "ck", "--bogus"]],
)
def test_a_subcommands_usage_error_shows_its_own_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    command = " ".join(a for a in argv[:2] if not a.startswith("-") and a != "expert")
    assert err.startswith(f"usage: dialog-bench {command} ")
    assert err.splitlines()[-1] == f"dialog-bench {command}: error: unrecognized arguments: --bogus"


def test_help_is_a_short_summary_without_markup():
    for command, leaf in leaf_parsers(build_parser()).items():
        text = leaf.description or ""
        assert "\n" not in text and len(text) < 700, command
        assert "``" not in text and ":func:" not in text and "%%" not in text, command


def test_leaderboard_help_shows_a_plain_percent(capsys):
    with pytest.raises(SystemExit):
        main(["leaderboard", "--help"])
    out = capsys.readouterr().out
    assert "95% bootstrap" in " ".join(out.split()) and "%%" not in out


def test_a_missing_hf_directory_is_said_as_such(tmp_path, capsys):
    assert main(["evaluate", f"hf:{tmp_path / 'none'}", "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no model directory at {tmp_path / 'none'}" in err


def test_a_demos_file_without_its_metadata_is_said_as_such(tmp_path, capsys):
    demos = tmp_path / "d.jsonl"
    demos.write_text("")
    assert main(["train", "sft", "--demos", str(demos), "--out", str(tmp_path / "ck")]) == 2
    assert "d.jsonl has no d.meta.json beside it" in capsys.readouterr().err


def test_a_tampered_return_is_shown_rounded(tmp_path, capsys):
    from leaderboard_helpers import real_results, write_json

    results = real_results("expert")
    results["episodes"][0]["return"] = 0.1 + 0.2  # 0.30000000000000004
    path = write_json(tmp_path / "r.json", results)
    assert main(["submit", str(path), "--db", str(tmp_path / "lb.sqlite"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "return is 0.3, the replay gives" in err and "0.30000000000000004" not in err


def test_no_progress_also_silences_transformers_bars(monkeypatch):
    from transformers.utils import logging as hf_logging

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    monkeypatch.setattr("leaderboard.evaluate.main", lambda args: 0)
    hf_logging.enable_progress_bar()  # as in a new process (other tests ran --quiet here)
    try:
        assert main(["evaluate", "expert"]) == 0
        assert hf_logging.is_progress_bar_enabled()
        assert main(["evaluate", "expert", "--quiet"]) == 0
        assert not hf_logging.is_progress_bar_enabled()
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    finally:
        hf_logging.enable_progress_bar()


# -- 6. output names carry the env id and the set ---------------------------------------------
def test_evaluates_default_outputs_of_two_ids_and_sizes_do_not_overwrite(
    monkeypatch, tmp_path, capsys
):
    def evaluate_agent(agent, episode_set, **kwargs):
        env_dir = episode_set.env_id
        results = published(env_dir, "sft-chat" if env_dir == "Dialog-Chat-v1" else "expert")
        results["header"] = {**results["header"], "agent": "mine"}
        return results

    monkeypatch.setattr("leaderboard.evaluate.evaluate_agent", evaluate_agent)
    monkeypatch.chdir(tmp_path)
    for argv in (["--limit", "3"], ["--limit", "3", "--env-id", "Dialog-Chat-v1"], []):
        assert main(["evaluate", "random", "--quiet", *argv]) == 0
    written = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert written == [
        "mine.Dialog-Chat-v1.test-first3.json",
        "mine.Dialog-v1.test-first3.json",
        "mine.Dialog-v1.test.json",
    ]
    assert all(not is_inside(tmp_path / "results" / n, shipped_trees()) for n in written)


# -- 8. every --help runs, and leaves the checkout as it was ---------------------------------
def git_status() -> str:
    import subprocess

    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_every_subcommands_help_runs_and_writes_nothing(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    before = git_status()
    commands = sorted(leaf_parsers(build_parser()))
    assert len(commands) >= 16
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            main([*command.split(), "--help"])
        assert exited.value.code == 0, command
        out = capsys.readouterr().out
        assert out.startswith(f"usage: dialog-bench {command}"), command
        assert str(REPO) not in out, f"{command} --help shows a path into this checkout"
    assert git_status() == before
