"""The command line as a newcomer meets it: no command writes into what ships unless told
to, every id plays or refuses in one line, names and tasks are honoured everywhere, and
errors and help are short and the subcommand's own.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from dialog_bench.cli import build_parser, main
from dialog_bench.parsers import is_inside, leaf_parsers, output_defaults

REPO = Path(__file__).resolve().parents[1]
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
        ["demos", "--out", "d.jsonl", "--episodes", "1"],
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
    positional = ["expert"] if command == "evaluate" else []
    assert main([command, *positional]) == 0 and chosen == [1]
    assert main([command, *positional, "--threads", "3"]) == 0 and chosen == [1, 3]
    assert main([command, *positional, "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


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
