"""Learning curves: every manifest format read into one shape, the shipped checkpoints'
manifests found for the page's rows, and the page's plot of them (issue 9, item 5)."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
from leaderboard_helpers import stored_entry

from agents import shipped_checkpoints
from leaderboard.agent_card import read_budget
from leaderboard.html_page import plot_learning_curves, render_html
from leaderboard.learning_curves import LearningCurve, SetCurves, entry_curves, learning_curve
from leaderboard.render import render
from leaderboard.standings import compute_standings

SHIPPED = shipped_checkpoints()
PNG = b"\x89PNG\r\n\x1a\n"


def _manifest(name: str) -> dict:
    return json.loads((SHIPPED[name] / "manifest.json").read_text())


# -- each manifest format ------------------------------------------------------------------
GRPO_CHAT = {
    "budget": {"env_steps": 3600},
    "curve": [
        {"iteration": 0, "env_steps": 0, "dev_success": 0.0, "dev_gold": 0.17, "kl": 0.0},
        {"iteration": 5, "env_steps": 1800, "dev_success": 0.0, "dev_gold": 0.15, "kl": 1.2},
        {"iteration": 10, "env_steps": 3600, "dev_success": 0.1, "dev_gold": 0.12, "kl": 3.4},
    ],
}
SFT_BOOKING = {
    "budget": {"demo_episodes": 5800, "tokens": 4_000_000},
    "curve": [
        {"step": 300, "tokens": 1_000_000, "demo_episodes_seen": 2797.1, "dev_success": 0.2},
        {"step": 600, "tokens": 2_000_000, "demo_episodes_seen": 5594.2, "dev_success": 0.4},
    ],
}
SFT_CHAT = {
    "curve": [{"step": 200, "tokens": 709_190, "demo_episodes_seen": 1172.3, "dev_gold": 0.04}]
}
SB3 = {
    "budget": {"env_steps": 20_016},
    "curve": [
        {"env_steps": 10_000, "eval_success": 0.3, "eval_mean_reward": -0.33},
        {"env_steps": 20_000, "eval_success": 0.66, "eval_mean_reward": 0.2},
    ],
}
TOKEN_PPO = {
    "budget": {"env_steps": 128},
    "config": {"num_envs": 16, "messages_per_env": 4, "iterations": 2},
    "dev_history": [
        {"iteration": 0, "dev_success": 0.42, "dev_return": 0.24},
        {"iteration": 1, "dev_success": 0.44, "dev_return": 0.25},
        {"iteration": 2, "dev_success": 0.40, "dev_return": 0.23},
    ],
}
OLD_SFT = {"budget": {"demo_episodes": 5800, "tokens": 4_765_419}, "dev_success": 0.45}


def test_grpo_curves_give_success_or_gold_against_env_steps():
    assert learning_curve(GRPO_CHAT) == LearningCurve(
        {"env_steps": [(0.0, 0.0), (1800.0, 0.0), (3600.0, 0.1)]}, "dev_success"
    )
    gold = learning_curve(GRPO_CHAT, "gold")
    assert gold.points == {"env_steps": [(0.0, 0.17), (1800.0, 0.15), (3600.0, 0.12)]}
    assert gold.key == "dev_gold" and gold.on_dev


def test_sft_curves_are_against_trained_tokens():
    """The board's one budget vocabulary: an SFT point's ``tokens`` are trained tokens."""
    assert learning_curve(SFT_BOOKING).points == {
        "trained_tokens": [(1_000_000.0, 0.2), (2_000_000.0, 0.4)]
    }
    assert learning_curve(SFT_CHAT, "gold").points == {"trained_tokens": [(709_190.0, 0.04)]}
    assert learning_curve(SFT_CHAT, "success") is None  # a chat SFT run records gold only


def test_sb3_curves_are_marked_as_not_scored_on_dev():
    curve = learning_curve(SB3)
    assert curve.points == {"env_steps": [(10_000.0, 0.3), (20_000.0, 0.66)]}
    assert curve.key == "eval_success" and not curve.on_dev


def test_token_ppo_history_without_env_steps_gets_them_from_its_rollout_sizes():
    # Each iteration plays 4 messages in each of 16 sub-envs: 64 env steps.
    curve = learning_curve(TOKEN_PPO)
    assert curve.points == {"env_steps": [(0.0, 0.42), (64.0, 0.44), (128.0, 0.40)]}
    with_steps = {
        "dev_history": [{**p, "env_steps": 10 * p["iteration"]} for p in TOKEN_PPO["dev_history"]]
    }
    assert learning_curve(with_steps).points == {  # recorded steps win over derived ones
        "env_steps": [(0.0, 0.42), (10.0, 0.44), (20.0, 0.40)]
    }


def test_token_ppo_history_whose_rollout_sizes_do_not_add_up_is_refused():
    bad = {**TOKEN_PPO, "budget": {"env_steps": 130}}
    with pytest.raises(ValueError, match="2 iterations of 64 messages do not make .* 130"):
        learning_curve(bad)
    with pytest.raises(ValueError, match="the manifest no 'num_envs'"):
        learning_curve({**TOKEN_PPO, "config": {"messages_per_env": 4, "iterations": 2}})


def test_a_manifest_without_a_curve_has_none():
    assert learning_curve(OLD_SFT) is None
    assert learning_curve({"curve": []}) is None


@pytest.mark.parametrize(
    ("curve", "message"),
    [
        ({"curve": {"env_steps": 1}}, "curve must be a list of objects"),
        ({"curve": [{"env_steps": 1, "dev_success": 0.1}, 3]}, "list of objects"),
        ({"curve": [{"step": 1, "dev_success": 0.5}]}, r"curve\[0\] has no budget"),
        ({"curve": [{"env_steps": 1, "dev_success": "0.5"}]}, "finite number, got '0.5'"),
        ({"curve": [{"env_steps": True, "dev_success": 0.5}]}, "finite number, got True"),
        (
            {"curve": [{"env_steps": 1, "dev_success": 0.5}, {"env_steps": 2}]},
            r"curve\[1\] dev_success is missing",
        ),
        (
            {"curve": [{"env_steps": 1, "dev_success": 0.5}, {"dev_success": 0.6}]},
            r"curve\[1\] env_steps is missing",
        ),
        ({"curve": [{"env_steps": 1, "dev_success": 1.5}]}, r"must lie in \[0, 1\]"),
        ({"curve": [{"env_steps": -1, "dev_success": 0.5}]}, "must not be negative"),
        (
            {"curve": [{"env_steps": 9, "dev_success": 0.5}, {"env_steps": 3, "dev_success": 0}]},
            "3 is below the budget before it",
        ),
    ],
)
def test_a_malformed_curve_is_a_clear_error(curve, message):
    with pytest.raises(ValueError, match=message):
        learning_curve(curve)


def test_an_unknown_measure_is_an_error():
    with pytest.raises(ValueError, match="measure must be one of success, gold"):
        learning_curve(GRPO_CHAT, "return")


# -- the shipped manifests -----------------------------------------------------------------
#: Shipped checkpoints without a learning curve, and why; every other one must have one.
NO_CURVE = {
    "bon-chat": "no training: best-of-n over sft-chat's samples, ranked by the RM",
    "sb3-ppo": "trained (d18f87b) before `train sb3` recorded a curve; retraining it would "
    "change the shipped checkpoint and its published row",
}


def _ranked_by(name: str) -> str:
    """The measure the board ranks ``name``'s task by: gold on the chat task, else success."""
    config = json.loads((SHIPPED[name] / "config.json").read_text())
    return "gold" if config.get("env_id") == "Dialog-Chat-v1" else "success"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_manifest_has_its_curve_and_it_ends_within_its_budget(name):
    manifest = _manifest(name)
    curve = learning_curve(manifest, _ranked_by(name))
    if name in NO_CURVE:  # known missing: the list is updated when one arrives
        assert curve is None, f"{name} has a curve now: take it off NO_CURVE"
        return
    assert curve is not None, f"{name}'s manifest has no {_ranked_by(name)} curve"
    if "env_steps" in curve.points:
        assert curve.points["env_steps"][-1][0] <= manifest["budget"]["env_steps"]


def test_shipped_token_ppo_steps_are_those_of_its_budget():
    manifest = _manifest("ppo-base")
    (points,) = learning_curve(manifest).points.values()
    assert [x for x, _ in points] == [0.0, 960.0, 1920.0, 2880.0, 3840.0]
    assert points[-1][0] == manifest["budget"]["env_steps"]
    assert [y for _, y in points] == [p["dev_success"] for p in manifest["dev_history"]]


def test_shipped_chat_rl_curve_is_of_gold():
    manifest = _manifest("rl-chat")
    curve = learning_curve(manifest, "gold")
    assert curve.points["env_steps"][-1] == (
        float(manifest["budget"]["env_steps"]),
        manifest["curve"][-1]["dev_gold"],
    )


# -- the rows of a board ---------------------------------------------------------------------
N = 40


def _entry(name, paradigm, rate, budget, **kwargs):
    successes = list(np.random.default_rng(len(name)).random(N) < rate)
    return stored_entry(name, paradigm, successes, budget=budget, **kwargs)


def _shipped(name, paradigm, rate, **kwargs):
    return _entry(name, paradigm, rate, read_budget(SHIPPED[name]), **kwargs)


@pytest.fixture(scope="module")
def board():
    (standings,) = compute_standings(
        [
            _entry("expert", "reference", 1.0, {}),
            _shipped("ppo-base", "rl", 0.4),
            _shipped("sb3-a2c", "rl", 0.9, interface="act"),
            _shipped("bon-chat", "best-of-n", 0.45),  # its manifest holds no curve
            _entry("sft-noisy", "sft", 0.3, {"demo_episodes": 1}),  # not its manifest's budget
            _entry("my-ppo", "rl", 0.5, {"env_steps": 100}),  # not shipped
            _entry("sb3-dqn", "rl", 1.0, {"env_steps": 150016}, labels="declared"),
        ]
    )
    return standings


def test_rows_get_their_shipped_manifests_curves_and_the_others_say_why_not(board):
    curves = entry_curves(board)
    assert sorted(curves.curves) == ["ppo-base", "sb3-a2c"]
    assert curves.curves["ppo-base"] == learning_curve(_manifest("ppo-base"))
    assert curves.missing == {
        "bon-chat": "no curve recorded",
        "sft-noisy": "its manifest's budget is not the one that was played",
        "my-ppo": "not a shipped checkpoint",
        "sb3-dqn": "declared entry, no manifest read",
    }


def test_a_bad_manifest_is_named_and_the_board_still_renders(board, tmp_path):
    broken = tmp_path / "ppo-base"
    broken.mkdir()
    manifest = _manifest("ppo-base")
    manifest["dev_history"][2]["dev_success"] = "NaN"
    (broken / "manifest.json").write_text(json.dumps(manifest))
    curves = entry_curves(board, {**SHIPPED, "ppo-base": broken})
    assert "ppo-base" not in curves.curves and "sb3-a2c" in curves.curves
    reason = curves.missing["ppo-base"]
    assert (
        reason == "unreadable curve: dev_history[2] dev_success must be a finite number, got 'NaN'"
    )
    page = render_html([board], curves={board.episode_set: curves})
    (caption,) = re.findall(r'alt="learning curves[^"]*".*?<figcaption>(.*?)</figcaption>', page)
    assert "Unreadable curve: dev_history[2] dev_success must be a finite number" in caption
    (broken / "manifest.json").write_text("{not json")
    missing = entry_curves(board, {"ppo-base": broken}).missing
    assert missing["ppo-base"].startswith("unreadable curve: ")


def _png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def test_the_plot_is_a_png_with_a_panel_per_budget_unit(board):
    curves = entry_curves(board).curves
    png = plot_learning_curves(board, curves)
    assert png[:8] == PNG and _png_size(png) == (640, 380)  # env steps only
    sft = LearningCurve({"trained_tokens": [(100.0, 0.1), (200.0, 0.3)]}, "dev_success")
    assert _png_size(plot_learning_curves(board, {**curves, "bon-chat": sft})) == (1120, 380)
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_learning_curves(board, {"ppo-base": LearningCurve({"env_steps": [(0.0, 0.4)]}, "k")})


def test_the_page_shows_the_curves_of_a_set_that_has_some_and_names_the_rest(board):
    # A set whose only trained row recorded no curve: no figure for it.
    (bare,) = compute_standings(
        [
            _entry("random", "reference", 0.0, {}, episode_set="X-v1/test"),
            _shipped("bon-chat", "best-of-n", 0.45, episode_set="X-v1/test"),
        ]
    )
    curves = {s.episode_set: entry_curves(s) for s in (board, bare)}
    assert curves[bare.episode_set] == SetCurves({}, {"bon-chat": "no curve recorded"})
    page = render_html([board, bare], curves=curves)
    sections = dict(re.findall(r'<section data-episode-set="([^"]+)">(.*?)</section>', page, re.S))
    assert 'alt="learning curves' not in sections["X-v1/test"]
    (figure,) = re.findall(
        r'<img class="plot" alt="learning curves[^>]*>', sections[board.episode_set]
    )
    assert (
        'alt="learning curves: dev success rate against training budget, Dialog-v1/test"' in figure
    )
    (caption,) = re.findall(
        r'alt="learning curves.*?<figcaption>(.*?)</figcaption>', sections[board.episode_set]
    )
    assert "on the dev episodes" in caption and "the table is on the test episodes" in caption
    assert "Hollow markers (own eval): sb3-a2c" in caption
    assert "No curve recorded: bon-chat." in caption
    assert "Not a shipped checkpoint: my-ppo." in caption
    assert "Declared entry, no manifest read: sb3-dqn." in caption
    # Without curves the page is as before; ``dialog-bench leaderboard --format html``
    # reads the shipped manifests and draws them, as ``dialog-bench run``'s page does.
    assert "learning curves" not in render_html([board])
    assert 'alt="learning curves: dev success rate against training budget, Dialog-v1/test"' in (
        render([board], "html")
    )


def test_dialog_bench_run_writes_the_curves_of_the_checkpoints_it_played(tmp_path, capsys):
    from dialog_bench.cli import main

    results = tmp_path / "results"
    argv = ["run", "--agents", str(SHIPPED["sb3-a2c"]), "expert", "--env-id", "Dialog-v1"]
    argv += ["--limit", "2", "--db", str(tmp_path / "lb.sqlite"), "--results-dir", str(results)]
    assert main([*argv, "--quiet", "--workers", "1"]) == 0
    page = (results / "leaderboard.html").read_text()
    alt = "learning curves: dev success rate against training budget, Dialog-v1/test[:2]"
    assert f'alt="{alt}"' in page and "Hollow markers (own eval): sb3-a2c" in page
