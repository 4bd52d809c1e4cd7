"""Standings and their renderings: ranks, ties, SFT vs RL, table, Markdown, JSON, HTML."""

from __future__ import annotations

import base64
import json
import re
import struct

import numpy as np
import pytest
from leaderboard_helpers import stored_entry

from leaderboard.html_page import plot_success_vs_budget, render_html
from leaderboard.render import COLUMNS, render, render_markdown, render_table
from leaderboard.standings import compute_standings, format_budget, standings_to_json
from leaderboard.stats import bootstrap_ci, paired_difference

N = 200


def _successes(rate: float, seed: int) -> list[bool]:
    return list(np.random.default_rng(seed).random(N) < rate)


@pytest.fixture(scope="module")
def board():
    rng = np.random.default_rng(0)
    base = rng.random(N)  # a shared difficulty per episode: what pairing exploits
    entries = [
        stored_entry("expert", "reference", [True] * (N - 4) + [False] * 4),
        stored_entry("random", "reference", _successes(0.01, 1)),
        stored_entry(
            "sft-a", "sft", list(base < 0.60), budget={"demo_episodes": 40_000, "tokens": 9 * 10**7}
        ),
        stored_entry(
            "fsft",
            "filtered-sft",
            list(base < 0.62),
            budget={"demo_episodes": 9_000, "tokens": 2 * 10**7},
        ),
        stored_entry("ppo", "rl", list(base < 0.80), budget={"env_steps": 2_000_000}),
        stored_entry("sft-ppo", "sft-rl", list(base < 0.78), budget={"env_steps": 2_400_000}),
    ]
    return entries, compute_standings(entries)


def test_entries_are_ranked_by_success_with_ties(board):
    _, (standings,) = board
    names = [e.name for e in standings.entries]
    assert names == ["expert", "ppo", "sft-ppo", "fsft", "sft-a", "random"]
    by_name = {e.name: e for e in standings.entries}
    assert by_name["expert"].rank == 1 and by_name["expert"].tied_with == ()
    assert by_name["ppo"].rank == 2 and by_name["ppo"].tied_with == ("sft-ppo",)
    assert by_name["fsft"].tied_with == ("sft-a",) and by_name["sft-a"].rank == 4
    assert by_name["random"].rank == 6


def test_statistics_are_the_bootstrap_of_the_stored_episodes(board):
    entries, (standings,) = board
    ppo = next(e for e in standings.entries if e.name == "ppo")
    raw = next(e for e in entries if e.name == "ppo")
    assert ppo.success == bootstrap_ci(np.asarray(raw.successes, float))
    assert ppo.mean_return == bootstrap_ci(raw.returns)
    assert ppo.iqm_return == bootstrap_ci(raw.returns, "iqm")
    assert ppo.mean_turns == 6.0 and ppo.episodes == N


def test_best_rl_is_compared_with_best_sft_on_paired_episodes(board):
    entries, (standings,) = board
    comparison = standings.comparison
    assert (comparison.rl, comparison.sft, comparison.episodes) == ("ppo", "fsft", N)
    raw = {e.name: e for e in entries}
    expected = paired_difference(
        np.asarray(raw["ppo"].successes, float), np.asarray(raw["fsft"].successes, float)
    )
    assert comparison.success_difference == expected
    assert comparison.success_difference.low > 0
    assert comparison.verdict.startswith(
        "Across lineages, not a verdict (other demos, recipes and budgets): at the language "
        "level (text and token entries): best RL ppo vs best SFT fsft on 200 paired episodes"
    )
    assert "RL (ppo) is ahead" in comparison.verdict


def test_without_both_families_the_board_says_so():
    (s,) = compute_standings([stored_entry("expert", "reference", [True] * 10)])
    assert s.comparison.verdict.endswith(
        "at the language level (text and token entries), no SFT vs RL comparison: no "
        "SFT-family entry yet (paradigms sft, filtered-sft) and no RL-family entry yet "
        "(paradigms rl, sft-rl)."
    )
    no_pair = "No lineage verdict: no RL row on the board starts from an SFT row on the board."
    assert s.act_comparison is None and s.verdicts == [no_pair, s.comparison.verdict]
    (s,) = compute_standings([stored_entry("a", "sft", [True] * 10)])
    assert "no RL-family entry yet" in s.comparison.verdict
    assert "no SFT-family" not in s.comparison.verdict


def test_act_interface_rl_gets_its_own_line_and_never_wins_the_language_verdict():
    """The act interface's templates write the text: its RL rows say more about the
    interface than the paradigm, so they are compared on a line of their own."""
    rng = np.random.default_rng(3)
    base = rng.random(N)
    entries = [
        stored_entry("sft-a", "sft", list(base < 0.6)),
        stored_entry("tok-rl", "sft-rl", list(base < 0.55), interface="token"),
        stored_entry("act-ppo", "rl", [True] * N, interface="act"),
    ]
    (s,) = compute_standings(entries)
    assert (s.comparison.rl, s.comparison.sft, s.comparison.scope) == (
        "tok-rl",
        "sft-a",
        "language",
    )
    assert (s.act_comparison.rl, s.act_comparison.sft) == ("act-ppo", "sft-a")
    assert s.act_comparison.verdict.startswith(
        "Across lineages, not a verdict (other demos, recipes and budgets): through the act "
        "interface (its templates write the text): best RL act-ppo vs best SFT"
    )
    assert "RL (act-ppo) is ahead" in s.act_comparison.verdict
    assert "act-ppo" not in s.comparison.verdict
    assert s.verdicts == [s.no_pair, s.comparison.verdict, s.act_comparison.verdict]
    md, page = render_markdown([s]), render_html([s])
    assert f"{s.comparison.verdict}\n\n{s.act_comparison.verdict}\n" in md
    assert page.count('<p class="verdict">') == 3
    sets = standings_to_json([s])["sets"][0]
    assert sets["act_sft_vs_rl"]["rl"] == "act-ppo" and sets["sft_vs_rl"]["rl"] == "tok-rl"


def test_a_modular_row_is_shown_with_its_label_and_is_neither_rl_nor_sft():
    """A pipeline with a learned NLU before an RL policy (issue 31) is on the board as
    ``modular``: ranked and rendered, never the RL or SFT side of a verdict line."""
    rng = np.random.default_rng(5)
    base = rng.random(N)
    entries = [
        stored_entry("sft-a", "sft", list(base < 0.6)),
        stored_entry("act-ppo", "rl", list(base < 0.7), interface="act"),
        stored_entry("modular-ppo", "modular", [True] * N, interface="act"),
    ]
    (s,) = compute_standings(entries)
    assert s.entries[0].name == "modular-ppo" and s.entries[0].paradigm == "modular"
    assert s.comparison.rl is None and s.comparison.sft == "sft-a"
    assert (s.act_comparison.rl, s.act_comparison.sft) == ("act-ppo", "sft-a")
    assert all("modular-ppo" not in line for line in s.verdicts)
    assert re.search(r"\| modular-ppo \| modular \| act \|", render_markdown([s]))
    assert "modular" in render_html([s])


def test_equal_families_are_not_called_a_win():
    same = [True, False] * 50
    (s,) = compute_standings([stored_entry("s", "sft", same), stored_entry("r", "rl", same)])
    assert "no clear difference (the CI contains 0)" in s.comparison.verdict


def test_episode_sets_are_separate_boards():
    boards = compute_standings(
        [
            stored_entry("a", "reference", [True] * 5, episode_set="Dialog-v1/test[:5]"),
            stored_entry("a", "reference", [True] * 10),
        ]
    )
    assert [b.episode_set for b in boards] == ["Dialog-v1/test", "Dialog-v1/test[:5]"]


def test_budget_words():
    """One vocabulary whatever the manifest wrote: old ``tokens`` are trained tokens for
    SFT and sampled tokens for RL; KL-probe steps count as env steps; SFT->RL adds its
    start's budget; best-of-n states its base's as such."""
    assert format_budget({"env_steps": 2_400_000, "tokens": 8_500_000}) == (
        "2.4M env steps, 8.5M tokens"
    )
    assert format_budget({"tokens": 8_500_000, "demo_episodes": 900}, "sft") == (
        "8.5M trained tokens, 900 demos"
    )
    old_rl = {"env_steps": 1000, "kl_probe_env_steps": 50, "tokens": 9000, "trained_tokens": 4e4}
    new_rl = {"env_steps": 1050, "sampled_tokens": 9000, "trained_tokens": 4e4, "cpu_time_s": 60}
    assert format_budget(old_rl, "rl") == "40k trained tokens, 9k sampled tokens, 1.05k env steps"
    assert format_budget(new_rl, "rl") == (
        "40k trained tokens, 9k sampled tokens, 1.05k env steps, CPU 1 min"
    )
    assert format_budget({**new_rl, "start_budget": {"trained_tokens": 5e6}}, "sft-rl") == (
        "40k trained tokens, 9k sampled tokens, 1.05k env steps, CPU 1 min + start (5M trained "
        "tokens)"
    )
    header = {**new_rl, "start_trained_tokens": 5e6, "start_cpu_time_s": 7200}  # as stored
    assert format_budget(header, "sft-rl").endswith("+ start (5M trained tokens, CPU 2 h)")
    assert format_budget(old_rl, "sft-rl").endswith("+ start (not on the board)")
    assert format_budget(old_rl, "sft-rl", start="sft-a").endswith("+ start (sft-a)")
    assert format_budget({"tokens": 5e6}, "best-of-n", base="sft-a") == (
        "none; its base sft-a's: 5M trained tokens"
    )
    assert format_budget({"wall_time_s": 12.0}) == "wall 0.2 min"
    assert format_budget({}) == "none"


def test_table_has_a_row_per_entry_and_the_verdict(board):
    _, standings = board
    text = render_table(standings)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    header = next(i for i, line in enumerate(lines) if line.startswith("# "))
    rows = lines[header + 2 : header + 8]
    assert [r.split()[1] for r in rows] == ["expert", "ppo", "sft-ppo", "fsft", "sft-a", "random"]
    assert rows[1].split()[0] == "2=" and rows[0].split()[0] == "1"
    expert = standings[0].entries[0].success
    assert f"0.980 [{expert.low:.3f}, {expert.high:.3f}]" in rows[0] and expert.high < 1
    assert "best RL ppo vs best SFT fsft" in " ".join(text.split()) and "10,000 resamples" in text


def test_markdown_is_a_valid_table(board):
    _, standings = board
    md = render_markdown(standings, title="t")
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 6
    assert all(row.count("|") == len(COLUMNS) + 1 for row in rows)
    assert md.startswith("# t\n")


def test_json_matches_the_standings(board):
    _, standings = board
    data = json.loads(render(standings, "json"))
    assert data["bootstrap"] == {"resamples": 10_000, "seed": 0}
    (s,) = data["sets"]
    assert [e["name"] for e in s["entries"]] == [e.name for e in standings[0].entries]
    assert s["entries"][1]["success"]["low"] == standings[0].entries[1].success.low
    assert s["sft_vs_rl"]["rl"] == "ppo" and "verdict" in s["sft_vs_rl"]
    assert data == standings_to_json(standings)


def test_html_is_self_contained_with_table_rows_and_png_plots(board):
    _, standings = board
    page = render_html(standings)
    assert page.startswith("<!DOCTYPE html>")
    assert re.findall(r'data-entry="([^"]+)"', page) == [e.name for e in standings[0].entries]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # Nothing is fetched from anywhere: every src/href is inline.
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page


def test_empty_board_says_how_to_fill_it_in_every_format():
    empty = "No entries yet: run `dialog-bench run`, or `dialog-bench submit RESULTS.json`."
    assert render([], "table") == empty + "\n"
    assert render([], "md") == f"# dialog-bench leaderboard\n\n{empty}\n"
    assert json.loads(render([], "json")) == {
        "confidence": 0.95,
        "bootstrap": {"resamples": 10_000, "seed": 0},
        "sets": [],
    }
    page = render([], "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<p>No entries yet: run <code>dialog-bench run</code>.</p>" in page
    assert "data-entry" not in page and "data:image/png" not in page  # no rows, no plots


def test_unknown_format_is_an_error():
    with pytest.raises(ValueError, match="format must be one of"):
        render([], "pdf")


def _png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def test_budget_plot_has_a_panel_per_budget_unit(board):
    _, (standings,) = board
    assert _png_size(plot_success_vs_budget(standings)) == (1120, 380)  # trained tokens + env steps
    (rl_only,) = compute_standings(
        [stored_entry("ppo", "rl", [True, False] * 5, budget={"env_steps": 1000})]
    )
    assert _png_size(plot_success_vs_budget(rl_only)) == (640, 380)
    (untrained,) = compute_standings([stored_entry("expert", "reference", [True] * 4)])
    assert _png_size(plot_success_vs_budget(untrained)) == (640, 380)


# -- declared and verified labels (issue 11) -----------------------------------------------
def _mixed_board():
    rng = np.random.default_rng(1)
    base = rng.random(N)
    return compute_standings(
        [
            stored_entry("sft-a", "sft", list(base < 0.6), budget={"demo_episodes": 4000}),
            stored_entry("ppo", "rl", list(base < 0.4), budget={"env_steps": 10_000}),
            # The attack of issue 11: the expert's transcripts, relabelled as RL.
            stored_entry("my-ppo", "rl", [True] * N, budget={"env_steps": 10}, labels="declared"),
        ]
    )


def test_every_format_marks_declared_and_verified_entries():
    board = _mixed_board()
    table = render_table(board)
    rows = {line.split()[1]: line for line in table.splitlines() if line[:1].isdigit()}
    assert "  replayed  " in rows["my-ppo"] and "  played by the board  " in rows["ppo"]
    md = render_markdown(board)
    md_rows = {r.split(" | ")[1]: r.split(" | ") for r in md.splitlines() if r.startswith("| ")}
    checked_at, declared_at = COLUMNS.index("checked"), COLUMNS.index("declared")
    assert md_rows["my-ppo"][checked_at] == "replayed"
    assert md_rows["sft-a"][checked_at] == "played by the board"
    assert md_rows["my-ppo"][declared_at] == "weights, interface, paradigm, budget, data"
    assert md_rows["sft-a"][declared_at] == "paradigm, budget, data"
    data = json.loads(render(board, "json"))
    assert {e["name"]: e["labels"] for e in data["sets"][0]["entries"]} == {
        "my-ppo": "declared",
        "ppo": "verified",
        "sft-a": "verified",
    }
    assert {e["name"]: e["checked"] for e in data["sets"][0]["entries"]} == {
        "my-ppo": ["env", "episodes"],
        "ppo": ["weights", "interface", "env", "episodes"],
        "sft-a": ["weights", "interface", "env", "episodes"],
    }
    page = render_html(board)
    assert re.findall(r'data-entry="([^"]+)" data-labels="([^"]+)"', page) == [
        ("my-ppo", "declared"),
        ("sft-a", "verified"),
        ("ppo", "verified"),
    ]
    for text in (table, md, page):
        assert "replayed, a submitted results file" in " ".join(text.split())


def test_the_verdict_compares_verified_entries_only():
    """Was: a relabelled results file made the page read "RL (my-ppo) is ahead"."""
    (s,) = _mixed_board()
    assert (s.comparison.rl, s.comparison.sft, s.comparison.labels) == ("ppo", "sft-a", "verified")
    assert "SFT (sft-a) is ahead" in s.comparison.verdict
    assert s.comparison.verdict.endswith("Declared entries not compared: my-ppo.")
    assert "my-ppo" not in s.comparison.verdict.split("Declared")[0]


def test_a_verdict_that_rests_on_declared_labels_says_so():
    (s,) = compute_standings(
        [
            stored_entry("sft-a", "sft", [True, False] * 50),
            stored_entry("my-ppo", "rl", [True] * 100, labels="declared"),
        ]
    )
    assert s.comparison.labels == "declared" and s.comparison.rl == "my-ppo"
    assert s.comparison.verdict.startswith(
        "Across lineages, not a verdict (other demos, recipes and budgets): On declared labels "
        "only (a family has no verified"
    )
    assert "RL (my-ppo) is ahead" in s.comparison.verdict
    assert standings_to_json([s])["sets"][0]["sft_vs_rl"]["labels"] == "declared"


def test_success_is_split_by_goal_kind_when_the_episodes_say_it():
    """Goals with a booking and goals without are scored apart: the column says which
    kind an agent fails (an agent that cannot copy a booking reference fails only one)."""
    import dataclasses

    kinds = ("booking", "inform") * 50
    successes = [kind == "inform" or i % 4 == 0 for i, kind in enumerate(kinds)]
    entry = dataclasses.replace(stored_entry("a", "sft", successes), goal_kinds=kinds)
    plain = stored_entry("b", "sft", successes)
    (s,) = compute_standings([entry, plain])
    by_name = {e.name: e for e in s.entries}
    assert by_name["a"].success_by_goal == {"booking": 0.5, "inform": 1.0}
    assert by_name["b"].success_by_goal == {}
    md = render_markdown([s])
    assert "| 0.50 / 1.00 |" in md and "| - / - |" in md


def test_published_entries_know_the_goal_kind_of_every_episode(tmp_path):
    """The store reads each episode's goal kind from its recorded metrics."""
    from leaderboard.episodes import get_episode_set
    from leaderboard.results import read_results
    from leaderboard.store import VERIFIED, LeaderboardStore
    from leaderboard.verify import VerifiedResults

    results = read_results("leaderboard/results/Dialog-v1/expert.json")
    store = LeaderboardStore(tmp_path / "board.sqlite")
    verified = VerifiedResults(
        results["header"], get_episode_set("Dialog-v1", "test"), results["episodes"]
    )
    store.add(verified, labels=VERIFIED)
    (entry,) = store.entries()
    by_seed = sorted(results["episodes"], key=lambda e: e["seed"])  # the store's order
    wants = [e["metrics"]["booked"] is not None for e in by_seed]
    assert entry.goal_kinds == tuple("booking" if w else "inform" for w in wants)
    assert 0 < sum(wants) < len(wants)


def test_any_stored_name_is_text_in_every_format():
    """Issue 30: a hand-edited row named ``$\\frac{$`` stopped the HTML page with a
    matplotlib parse error; names are text everywhere: no mathtext in the plots, escaped
    in HTML and Markdown, one row each in the table."""
    from leaderboard.html_page import plot_learning_curves
    from leaderboard.learning_curves import LearningCurve

    names = ["$\\frac{$", "<b>x</b>", "a|b", "[l](javascript:x)", "_e_", "ex\npert"]
    entries = [
        stored_entry(n, p, [True, False] * 10, budget={"env_steps": 100 * (i + 1)})
        for i, (n, p) in enumerate(
            zip(names, ["rl", "sft", "sft-rl", "rl", "sft", "rl"], strict=True)
        )
    ]
    (s,) = compute_standings(entries)
    page = render_html([s])
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert re.findall(r'data-entry="([^"]+)"', page).count("$\\frac{$") == 1
    curve = LearningCurve({"env_steps": [(10.0, 0.2), (50.0, 0.5)]}, "dev_success")
    assert plot_learning_curves(s, {"$\\frac{$": curve})[:4] == b"\x89PNG"
    md = render_markdown([s])
    rows = [r for r in md.splitlines() if r.startswith("| ")]
    assert len(rows) == 2 + len(names) and all(r.count(" | ") == len(COLUMNS) - 1 for r in rows)
    assert "\\[l\\](javascript:x)" in md and "\\<b\\>" in md and "\\$\\\\frac{\\$" in md
    assert "| ex\\\\npert |" in md  # a newline in a name is shown (escaped), not obeyed
    table = render_table([s])
    assert max(map(len, table.splitlines())) <= 120
    assert "ex\\npert" in render_table([s], width=10_000)
