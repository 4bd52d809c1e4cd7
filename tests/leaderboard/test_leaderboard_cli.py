"""The command line: evaluate -> submit -> leaderboard, `run`, and the published files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from agents import AGENTS
from dialog_bench.cli import main
from dialog_env.lm.model_files import directory_sha256
from leaderboard.agent_card import read_budget
from leaderboard.episodes import RUN_ENV_IDS, get_episode_set
from leaderboard.publish import PUBLISHED_DIR, README_MARKERS, publish
from leaderboard.results import read_results
from leaderboard.run import checkpoint_dirs, shipped_baselines, shipped_runs
from leaderboard.store import LeaderboardStore
from leaderboard.verify import check_header

REPO = REPO_ROOT


def test_evaluate_submit_and_show(tmp_path, capsys):
    out, db = tmp_path / "expert.json", tmp_path / "lb.sqlite"
    argv = ["evaluate", "expert", "--episodes", "dev", "--limit", "4", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    results = read_results(out)
    header = results["header"]
    assert header["episode_set"] == "Dialog-v1/dev[:4]"
    assert header["episode_set_sha256"] == get_episode_set("Dialog-v1", "dev", 4).sha256
    assert (header["agent"], header["paradigm"], header["interface"]) == (
        "expert",
        "reference",
        "text",
    )
    assert [ep["seed"] for ep in results["episodes"]] == list(
        get_episode_set("Dialog-v1", "dev", 4).seeds
    )

    assert main(["submit", str(out), "--db", str(db), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("accepted: expert on Dialog-v1/dev[:4]")
    assert main(["submit", str(out), "--db", str(db), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rejected: Dialog-v1/dev[:4] already has an entry named 'expert'")
    assert err.count("\n") == 1
    assert main(["submit", str(out), "--db", str(db), "--name", "my agent!", "--quiet"]) == 1
    assert "rejected: entry name 'my agent!' must be 1-64 letters" in capsys.readouterr().err
    assert main(["submit", str(out), "--db", str(db), "--name", "expert-2", "--quiet"]) == 0
    capsys.readouterr()

    assert main(["leaderboard", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "Dialog-v1/dev[:4]" in table and "expert-2" in table
    assert main(["leaderboard", "--db", str(db), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {e["name"] for e in data["sets"][0]["entries"]} == {"expert", "expert-2"}
    page = tmp_path / "board.html"
    assert main(["leaderboard", "--db", str(db), "--format", "html", "--out", str(page)]) == 0
    assert page.read_text().count('class="entry"') == 2


@pytest.mark.parametrize("agent", ["expert", "random"])
def test_batched_and_sequential_evaluation_give_the_same_episodes(tmp_path, agent):
    """Each slot has its own agent, reset with each episode's seed, so the batch size
    changes nothing (the random agent's draws included)."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path, batch in ((a, "1"), (b, "3")):
        argv = ["evaluate", agent, "--limit", "5", "--out", str(path), "--batch-size", batch]
        assert main([*argv, "--quiet"]) == 0
    assert read_results(a)["episodes"] == read_results(b)["episodes"]
    assert read_results(b)["header"]["evaluation"] == {
        "batch_size": 3,
        "agent_calls": "act",
        "agent_seed": None,
    }


def test_an_agent_with_its_own_act_batch_is_asked_once_per_step(tmp_path):
    from agents.expert import ExpertAgent
    from leaderboard.rollout import AgentMessages, play_episodes

    class BatchedExpert(ExpertAgent):
        calls: list[int] = []

        def act_batch(self, observations):
            self.calls.append(len(observations))
            return [self.act(o) for o in observations]

    episode_set = get_episode_set("Dialog-v1", "test", limit=5)
    source = AgentMessages(BatchedExpert, batch_size=3)
    records = play_episodes(source, episode_set, progress=False)
    assert source.calls == "act_batch" and max(BatchedExpert.calls) == 3
    assert sum(BatchedExpert.calls) == sum(len(r["rewards"]) for r in records)


def test_a_tampered_file_is_rejected_on_the_command_line(tmp_path):
    out, db = tmp_path / "r.json", tmp_path / "lb.sqlite"
    assert main(["evaluate", "random", "--limit", "3", "--out", str(out), "--quiet"]) == 0
    results = json.loads(out.read_text())
    results["episodes"][0]["rewards"][0] = 1.0
    out.write_text(json.dumps(results))
    proc = subprocess.run(
        [sys.executable, "-m", "dialog_bench", "submit", str(out), "--db", str(db)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("rejected:")]
    assert len(lines) == 1 and "reward of step 0 is 1.0" in lines[0]
    assert LeaderboardStore(db).count() == 0


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert main(["evaluate", "nobody", "--limit", "2", "--out", str(tmp_path / "x.json")]) == 2
    assert "unknown agent 'nobody'" in capsys.readouterr().err
    assert main(["evaluate", "expert", "--limit", "0"]) == 2
    assert "limit must be" in capsys.readouterr().err
    assert main(["leaderboard", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no database at" in capsys.readouterr().err


def test_run_evaluates_verifies_and_renders_every_baseline(tmp_path, capsys):
    db, results_dir = tmp_path / "lb.sqlite", tmp_path / "results"
    argv = ["run", "--limit", "3", "--db", str(db), "--results-dir", str(results_dir)]
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    # The built-in agents and every shipped checkpoint directory, each on its task's env.
    checkpoints = checkpoint_dirs()
    jobs = [(Path(b).name, e) for b, e in shipped_runs()]
    assert {n for n, _ in jobs} == {*AGENTS, *(d.name for d in checkpoints)}
    assert {e for _, e in jobs} == set(RUN_ENV_IDS)
    for name, env_id in jobs:
        assert f"accepted: {name} on {env_id}/test[:3]" in out
        assert (results_dir / env_id / f"{name}.test.json").is_file()
    paradigms = {json.loads((d / "config.json").read_text())["paradigm"] for d in checkpoints}
    flat = " ".join(out.split())  # the board's lines wrap at 120 columns
    if paradigms & {"sft", "filtered-sft"} and paradigms & {"rl", "sft-rl"}:
        assert "Across lineages, not a verdict" in flat and "vs best SFT" in flat
    else:
        assert "no SFT vs RL comparison" in flat
    assert f"{len(jobs)} of {len(jobs)} baselines verified" in out
    # The leaderboard played every shipped baseline itself: verified entries, not declared.
    assert {e.labels for e in LeaderboardStore(db).entries()} == {"verified"}
    page = (results_dir / "leaderboard.html").read_text()
    assert page.count('class="entry"') == len(jobs)
    assert page.count("data:image/png;base64,") >= 2 * len(RUN_ENV_IDS)
    # Running again replaces the baselines' entries instead of failing on their names.
    assert main([*argv, "--quiet"]) == 0
    stored = sorted((e.name, e.env_id) for e in LeaderboardStore(db).entries())
    assert stored == sorted(jobs)


def test_results_dir_moves_everything_run_writes_the_database_included(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "elsewhere"
    argv = ["run", "--agents", "expert", "--env-id", "Dialog-v1", "--limit", "2"]
    assert main([*argv, "--results-dir", str(out), "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'leaderboard.html'} and {out / 'leaderboard.sqlite'}" in printed
    assert re.search(
        r"accepted: expert .*\(\d+\.\ds; CPU s: play \d+\.\d, verify \d+\.\d\)", printed
    )
    assert [e.name for e in LeaderboardStore(out / "leaderboard.sqlite").entries()] == ["expert"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]  # nothing in ./results


def test_run_publish_needs_the_full_test_set(tmp_path):
    assert main(["run", "--limit", "5", "--publish", "--db", str(tmp_path / "x")]) == 2


def test_checkpoint_dirs_are_found_and_a_broken_one_does_not_stop_the_others(tmp_path, capsys):
    root = tmp_path / "checkpoints"
    (root / "sft-demo").mkdir(parents=True)
    (root / "sft-demo" / "manifest.json").write_text('{"budget": {"env_steps": 1000}}')
    (root / "notes").mkdir()  # no manifest or config: not a checkpoint
    (root / ".cache").mkdir()
    assert checkpoint_dirs(root) == [root / "sft-demo"]
    baselines = shipped_baselines(root)
    assert baselines == [*sorted(AGENTS), root / "sft-demo"]
    from leaderboard.run import run_baselines

    runs = run_baselines(
        ["random", root / "sft-demo", "expert"],
        LeaderboardStore(tmp_path / "lb.sqlite"),
        tmp_path,
        limit=3,
        progress=False,
    )
    assert [r.outcome is not None for r in runs] == [True, False, True]
    assert runs[1].baseline == "sft-demo" and runs[1].error


def test_checkpoint_budget_and_hash(tmp_path):
    (tmp_path / "manifest.json").write_text(
        json.dumps({"budget": {"env_steps": 5000, "tokens": 10, "wall_time_s": 3.5}})
    )
    assert read_budget(tmp_path) == {"env_steps": 5000, "tokens": 10, "wall_time_s": 3.5}
    before = directory_sha256(tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(b"\x00" * 8)
    assert directory_sha256(tmp_path) != before
    (tmp_path / "manifest.json").write_text('{"budget": {"env_steps": -1}}')
    with pytest.raises(ValueError, match="non-negative number"):
        read_budget(tmp_path)


def test_publish_writes_the_results_files_and_leaderboard_md(tmp_path):
    from leaderboard.run import run_baselines

    store = LeaderboardStore(tmp_path / "lb.sqlite")
    runs = run_baselines(["expert", "random"], store, tmp_path / "r", limit=4, progress=False)
    (tmp_path / "pub" / "results").mkdir(parents=True)
    (tmp_path / "pub" / "results" / "retired.json").write_text("{}")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_MARKERS[0]}\nold\n{README_MARKERS[1]}\nafter\n")
    md = publish(runs, store, target=tmp_path / "pub", readme=readme)
    root = tmp_path / "pub" / "results"
    published = sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))
    assert published == ["Dialog-v1/expert.json", "Dialog-v1/random.json"]
    text = md.read_text()
    assert text.startswith("# dialog-bench leaderboard") and "dialog-bench run --publish" in text
    assert "| 1 | expert |" in text
    excerpt = readme.read_text()
    assert excerpt.startswith("# x\n\nbefore\n") and excerpt.endswith("\nafter\n")
    assert "old" not in excerpt and "| 1 | expert |" in excerpt and "| 2 | random |" in excerpt


PUBLISHED = sorted((PUBLISHED_DIR / "results").glob("*/*.json"))
PUBLISHED_IDS = [f"{p.parent.name}/{p.stem}" for p in PUBLISHED]


@pytest.mark.parametrize("path", PUBLISHED, ids=PUBLISHED_IDS)
def test_published_results_belong_to_the_current_episode_set(path):
    """A published file made on other episodes (or another env spec) must be regenerated."""
    header = read_results(path)["header"]
    try:
        check_header(header)
    except ValueError as err:
        pytest.fail(f"{path.name}: {err}; regenerate with `dialog-bench run --publish`")
    assert header["episode_set"] == f"{path.parent.name}/test"
    sections = (PUBLISHED_DIR / "LEADERBOARD.md").read_text().split("\n## ")
    (section,) = [s for s in sections if s.startswith(f"{header['episode_set'].split('/')[0]}:")]
    rows = section.splitlines()
    entries = [r.split("|")[2].strip() for r in rows if r.startswith("|") and r.count("|") > 3]
    assert entries.count(path.stem) == 1  # its own row (a tied row may name it too)


@pytest.mark.slow
@pytest.mark.parametrize("path", PUBLISHED, ids=PUBLISHED_IDS)
def test_published_results_verify_by_replay(path):
    from leaderboard.verify import verify_results_file

    assert len(verify_results_file(path).episodes) == 500


# -- two ways onto the board: declared results files, verified checkpoints (issue 11) -----
SB3_CHECKPOINT = REPO / "baselines" / "checkpoints" / "sb3-ppo"


def test_submit_checkpoint_plays_it_and_stores_a_verified_entry(tmp_path, capsys):
    db = tmp_path / "lb.sqlite"
    argv = ["submit", "--checkpoint", str(SB3_CHECKPOINT), "--db", str(db), "--limit", "2"]
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("accepted: sb3-ppo on Dialog-v1/test[:2]") and "labels verified" in out
    (entry,) = LeaderboardStore(db).entries()
    assert (entry.labels, entry.paradigm, entry.interface) == ("verified", "rl", "act")
    assert entry.model_sha256 == directory_sha256(SB3_CHECKPOINT)
    assert entry.budget == read_budget(SB3_CHECKPOINT)
    # The episodes are the checkpoint's own: the same as evaluating it.
    own = read_results(_evaluate(tmp_path, str(SB3_CHECKPOINT), "2"))["episodes"]
    assert entry.successes == tuple(ep["success"] for ep in sorted(own, key=lambda e: e["seed"]))


def _evaluate(tmp_path, agent: str, limit: str) -> Path:
    out = tmp_path / "own.json"
    assert main(["evaluate", agent, "--limit", limit, "--out", str(out), "--quiet"]) == 0
    return out


def test_submit_checkpoint_refuses_in_one_line_and_stores_nothing(tmp_path, capsys):
    db = tmp_path / "lb.sqlite"
    bad = tmp_path / "bad-net"
    bad.mkdir()
    for f in SB3_CHECKPOINT.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "net_arch": [200000, 200000]}))
    for target, reason in [
        (bad, "rejected: checkpoint .*bad-net: .*net_arch must be a list of 1-8 layer widths"),
        (tmp_path / "missing", "rejected: no checkpoint directory at"),
        (REPO / "leaderboard", "rejected: checkpoint .*leaderboard has no config.json"),
    ]:
        assert main(["submit", "--checkpoint", str(target), "--db", str(db), "--quiet"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.match(reason, err), err
    assert LeaderboardStore(db).count() == 0
    assert main(["submit", "--db", str(db)]) == 2  # neither RESULTS nor --checkpoint
    assert "give either RESULTS" in capsys.readouterr().err


def test_a_relabelled_results_file_goes_on_as_declared_on_every_page(tmp_path, capsys):
    """Was: the expert's transcripts relabelled rl/act, small budget, zero hash were
    accepted and the page read "RL (my-ppo) is ahead"."""
    out, db = tmp_path / "r.json", tmp_path / "lb.sqlite"
    assert main(["evaluate", "expert", "--limit", "3", "--out", str(out), "--quiet"]) == 0
    results = json.loads(out.read_text())
    results["header"].update(
        agent="my-ppo", paradigm="rl", interface="act", budget={"env_steps": 10},
        model_sha256="0" * 64,
    )  # fmt: skip
    out.write_text(json.dumps(results))
    assert main(["submit", str(out), "--db", str(db), "--quiet"]) == 0
    assert "labels declared" in capsys.readouterr().out
    (entry,) = LeaderboardStore(db).entries()
    assert entry.labels == "declared"
    assert main(["leaderboard", "--db", str(db), "--format", "json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["sets"][0]["entries"]
    assert (shown["name"], shown["labels"]) == ("my-ppo", "declared")
    assert shown["checked"] == ["env", "episodes"] and "paradigm" in shown["declared"]
    for fmt in ("table", "md"):
        assert main(["leaderboard", "--db", str(db), "--format", fmt]) == 0
        out = capsys.readouterr().out
        row = next(line for line in out.splitlines() if "my-ppo" in line)
        assert "replayed" in row and "played by the board" not in row
        assert "my-ppo: 10 env steps (declared: weights, interface, paradigm" in out or (
            fmt == "md" and "| weights, interface, paradigm, budget, data |" in row
        )
