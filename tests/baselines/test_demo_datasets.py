"""Demonstrations people can load: with Hugging Face ``datasets`` and as Minari datasets.

Both libraries are optional extras; each test skips cleanly where its library is missing.
"""

from __future__ import annotations

import argparse

import pytest

from baselines.demos import generate_demos, load_demos, write_demos

SEEDS = range(12)


@pytest.fixture(scope="module")
def expert_demos(tmp_path_factory):
    records, meta = generate_demos(
        "expert", SEEDS, batch_size=4, progress=False, user_model="template"
    )
    path = tmp_path_factory.mktemp("demos") / "expert.jsonl"
    write_demos(path, records, meta, "test")
    return path


@pytest.fixture
def minari_home(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return minari


def test_demo_file_loads_with_hf_datasets(expert_demos, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(
        "json", data_files=str(expert_demos), split="train", cache_dir=str(tmp_path / "hf")
    )
    records = list(load_demos(expert_demos)[0])
    assert loaded.num_rows == len(records) == len(SEEDS)
    assert loaded.to_list() == records  # every field, nested turns and metrics included
    first = loaded[0]["turns"]
    assert first[0]["role"] == "user" and {t["role"] for t in first} == {
        "user",
        "assistant",
        "tool",
    }
    assert loaded.features["turns"].feature["text"].dtype == "string"


def test_act_demos_are_a_minari_dataset_that_replays(minari_home, expert_demos):
    from baselines.minari_demos import replay_minari_episode, write_minari_demos

    write_minari_demos("dialog-bench/booking/expert-v0", "expert", SEEDS, user_model="template")
    dataset = minari_home.load_dataset("dialog-bench/booking/expert-v0")
    assert dataset.total_episodes == len(SEEDS)
    assert str(dataset.action_space) == "Discrete(10)"
    assert dataset.observation_space.shape == dataset[0].observations.shape[1:]
    text_returns = {r["seed"]: r["return"] for r in load_demos(expert_demos)[0]}
    meta = dataset.storage.get_episode_metadata(range(len(SEEDS)))
    seeds = [m["seed"] for m in meta]
    assert seeds == list(SEEDS)
    for seed, episode in zip(seeds, dataset.iterate_episodes(), strict=True):
        assert replay_minari_episode(dataset, episode) == list(episode.rewards)
        # The expert's act episodes are its text demos: the same returns, seed by seed.
        assert sum(episode.rewards) == pytest.approx(text_returns[seed], abs=1e-9)
        assert episode.terminations[-1] or episode.truncations[-1]


def test_noisy_text_observation_demos_round_trip(minari_home):
    from baselines.minari_demos import replay_minari_episode, write_minari_demos

    dataset_id = "dialog-bench/booking/noisy-text-v0"
    write_minari_demos(
        dataset_id, "noisy-expert", range(6), observation="text", user_model="template"
    )
    dataset = minari_home.load_dataset(dataset_id)
    assert type(dataset.observation_space).__name__ == "Text"
    for episode in dataset.iterate_episodes():
        assert replay_minari_episode(dataset, episode) == list(episode.rewards)
        assert episode.observations[0].startswith("user: ")
        assert len(episode.observations) == len(episode.actions) + 1
    with pytest.raises(ValueError, match="already holds"):
        write_minari_demos(dataset_id, "expert", range(2), user_model="template")


def test_minari_demos_refuse_bad_input(minari_home):
    from baselines.minari_demos import write_minari_demos

    with pytest.raises(ValueError, match="not an act-interface env"):
        write_minari_demos("x/y-v0", "expert", range(2), env_id="Dialog-v1")
    with pytest.raises(ValueError, match="generator must be one of"):
        write_minari_demos("x/y-v0", "random", range(2))
    with pytest.raises(ValueError, match="training seeds"):
        write_minari_demos("x/y-v0", "expert", [10**9])


def test_dialog_bench_demos_writes_the_minari_dataset(minari_home, tmp_path, capsys):
    from baselines import demos

    parser = argparse.ArgumentParser()
    demos.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["demos", "--episodes", "3", "--user-model", "template", "--out", str(tmp_path / "d.jsonl")]
        + ["--minari", "dialog-bench/booking/cli-v0"]
    )
    assert args.func(args) == 0
    assert "wrote Minari dataset dialog-bench/booking/cli-v0: 3" in capsys.readouterr().out
    assert minari_home.load_dataset("dialog-bench/booking/cli-v0").total_episodes == 3
