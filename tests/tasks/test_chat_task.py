"""The chat task as users of ``ChatGPT-v1`` meet it: the seed's loop, determinism, misuse,
the hidden gold judge and the reward model's score in ``info`` (never in the observation)
and the reward thresholds."""

from __future__ import annotations

import gymnasium as gym
import pytest
from conftest import CHAT_PAGE, REPO_ROOT, chat_seed_loop

import dialog_env  # noqa: F401  (registers the ids)
from dialog_env.registration import ALIASES, ENV_IDS, task_of
from dialog_env.tasks.chat.tracker import ASSISTANT_ACTS, STATE_FEATURES, ChatTracker, state_vector
from dialog_env.testing import check_dialog_env

CHAT_IDS = ("Dialog-Chat-v1", "ChatGPT-v1")


def test_the_seeds_loop_runs_as_written(capsys):
    """docs/chat-task.md's loop, run as written, prints what the page says, every run."""
    block, said = chat_seed_loop()
    runs = []
    for _ in range(2):  # seeded env and action space: the same letters, the same value
        namespace: dict = {}
        exec(compile(block, str(CHAT_PAGE), "exec"), namespace)
        runs.append((capsys.readouterr().out, namespace["total_reward"]))
    assert runs[0] == runs[1]
    (printed, total_reward), info = runs[0], namespace["info"]
    assert printed == f"{said['printed']}\n"
    assert namespace["env"].spec.reward_threshold == float(said["threshold"])
    assert info["metrics"]["mean_gold"] == 0.0 and info["metrics"]["answered"] >= 1
    assert total_reward == pytest.approx(info["metrics"]["mean_rm"])
    # the page's figure (the RM's score moves in its last bits across CPUs, not more)
    assert total_reward == pytest.approx(float(said["total"]), abs=5e-4)


def test_every_registered_id_has_a_reward_threshold():
    for env_id in [*ENV_IDS, *ALIASES]:
        assert isinstance(gym.spec(env_id).reward_threshold, float), env_id


def test_the_environment_reference_states_each_ids_reward_threshold():
    """docs/environment.md, the env reference, states the thresholds the specs set."""
    page = " ".join((REPO_ROOT / "docs" / "environment.md").read_text().split())
    by_task: dict[str, set[float]] = {}
    for env_id in [*ENV_IDS, *ALIASES]:
        by_task.setdefault(task_of(env_id), set()).add(gym.spec(env_id).reward_threshold)
    assert all(len(t) == 1 for t in by_task.values()), by_task  # one threshold per task
    (booking,), (chat,) = by_task["booking"], by_task["chat"]
    assert (
        f"`spec.reward_threshold` ({booking} for the booking ids; {chat} for the chat ids," in page
    )


def test_the_alias_is_the_chat_id():
    alias, target = gym.spec("ChatGPT-v1"), gym.spec("Dialog-Chat-v1")
    assert alias.kwargs == target.kwargs and alias.entry_point == target.entry_point
    assert alias.max_episode_steps == target.max_episode_steps
    assert alias.reward_threshold == target.reward_threshold


@pytest.mark.parametrize("env_id", [*ENV_IDS, *ALIASES])
def test_every_id_names_the_task_its_spec_builds(env_id):
    assert task_of(env_id) == gym.spec(env_id).kwargs["task"]


def test_an_unknown_id_has_no_task():
    with pytest.raises(ValueError, match="unknown env id 'Dialog-v9'.*Dialog-v1"):
        task_of("Dialog-v9")


def _answer_by_acts(env_id: str, seed: int) -> tuple[float, dict]:
    """The act-level answerer: search what the request needs, then answer from the results."""
    env = gym.make(env_id, interface="act")
    obs, info = env.reset(seed=seed)
    tracker, done, total = ChatTracker(env.unwrapped.task.db), False, 0.0
    while not done:
        assert STATE_FEATURES[3] == "facts_known"
        facts_known = state_vector(tracker.sync(info["turns"]))[3]
        act = ASSISTANT_ACTS.index("answer" if facts_known else "search")
        obs, reward, terminated, truncated, info = env.step(act)
        total, done = total + reward, terminated or truncated
    return total, info


@pytest.mark.parametrize("env_id", CHAT_IDS)
def test_the_answerer_passes_the_threshold_and_random_text_does_not(env_id):
    threshold = gym.spec(env_id).reward_threshold
    for seed in range(8):
        total, info = _answer_by_acts(env_id, seed)
        assert total > threshold and info["success"], (seed, info["turns"])


def test_same_seed_same_episode_in_two_envs():
    a, b = gym.make("Dialog-Chat-v1"), gym.make("Dialog-Chat-v1")
    replies = ["[search] food=thai", "I recommend The Amber Fig.", "No idea.", "Bye then."]
    for seed in range(5):
        steps_a, steps_b = [a.reset(seed=seed)], [b.reset(seed=seed)]
        for reply in replies:
            steps_a.append(a.step(reply))
            steps_b.append(b.step(reply))
            if steps_a[-1][2]:
                break
        assert steps_a == steps_b
    openings = {gym.make("Dialog-Chat-v1").reset(seed=s)[0] for s in range(20)}
    assert len(openings) > 10


@pytest.mark.parametrize("reward", ["rm", "gold"])
def test_gold_terms_and_rm_score_are_in_info_and_never_in_the_observation(reward):
    env = gym.make("Dialog-Chat-v1", reward=reward)
    env.reset(seed=1)
    obs, reward_value, terminated, truncated, info = env.step("Sorry, I cannot help.")
    assert set(info["gold"]) == {"answered", "wrong", "invented", "concise", "polite", "gold"}
    assert isinstance(info["rm"], float)
    assert info["reward_terms"] == {reward: reward_value} and "request" in info
    assert "gold" not in obs and "answered" not in obs and str(info["rm"])[:6] not in obs
    _, reward_value, *_rest, info = env.step("[search] area=north")
    assert reward_value == 0.0 and info["tool_call"] and "gold" not in info and "rm" not in info


def test_the_return_is_the_mean_gold_score():
    env = gym.make("Dialog-Chat-v1", reward="gold")
    env.reset(seed=2)
    done, total, golds = False, 0.0, []
    while not done:
        _, reward, terminated, truncated, info = env.step("Happy to help, try The Amber Fig.")
        total, done = total + reward, terminated or truncated
        golds.append(info["gold"]["gold"])
    assert total == pytest.approx(sum(golds) / info["metrics"]["requests"])
    assert info["metrics"]["mean_gold"] == pytest.approx(total)


def test_patience_ends_a_run_of_tool_calls():
    env = gym.make("Dialog-Chat-v1", patience=3)
    env.reset(seed=0)
    for _ in range(2):
        assert not env.step("[search] price=cheap")[2]
    _, _, terminated, _, info = env.step("[search] price=cheap")
    assert terminated and not info["success"] and info["turns"][-1]["role"] == "user"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward_model": "/nowhere/rm"}, "no reward model directory"),
        ({"reward": "bleu"}, "reward must be one of"),
        ({"split": "dev"}, "split must be one of"),
    ],
)
def test_misuse_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("Dialog-Chat-v1", **kwargs)


def test_booking_takes_no_chat_arguments():
    with pytest.raises(ValueError, match="task 'booking' takes no argument 'reward'"):
        gym.make("Dialog-v1", reward="gold", user_model="template")


def test_test_split_venues_never_appear_in_train_goals():
    from dialog_env.tasks.booking.domain import load_database
    from dialog_env.tasks.chat.requests import split_venues

    db, _ = load_database()
    train = {v.name for v in split_venues(db, "train")}
    test = {v.name for v in split_venues(db, "test")}
    assert train and test and not train & test
    env = gym.make("Dialog-Chat-v1", split="test")
    for seed in range(20):
        env.reset(seed=seed)
        names = {n for a in env.unwrapped.task.goal for n in a.names}
        assert names <= test


def test_the_public_checker_passes_on_the_alias():
    check_dialog_env("ChatGPT-v1", seeds=(0, 1))


@pytest.mark.parametrize("interface", ["act", "token"])
def test_the_public_checker_passes_on_other_interfaces(interface):
    check_dialog_env("Dialog-Chat-v1", seeds=(0,), steps=12, interface=interface)


def test_shuffled_venue_names_ask_about_the_same_venues_under_new_names():
    import gymnasium as gym

    from agents.chat_expert import ChatExpertAgent

    shipped = gym.make("Dialog-Chat-v1", reward="gold")
    shuffled = gym.make("Dialog-Chat-v1", reward="gold", venue_names="shuffled")
    renamed = 0
    for seed in range(12):
        shipped.reset(seed=seed)
        obs, _ = shuffled.reset(seed=seed)
        before = shipped.unwrapped.task.goal
        after = shuffled.unwrapped.task.goal
        db, shipped_db = shuffled.unwrapped.task.db, shipped.unwrapped.task.db
        for a, b in zip(before, after, strict=True):
            assert (a.intent, a.wishes, a.asks) == (b.intent, b.wishes, b.asks)
            for old, new in zip(a.names, b.names, strict=True):
                assert db.get(new).phone == shipped_db.get(old).phone
                renamed += old != new
        agent, done, total = ChatExpertAgent(), False, 0.0
        while not done:  # the facts are in the search results, under the new names
            obs, reward, terminated, truncated, _ = shuffled.step(agent.act(obs))
            total, done = total + reward, terminated or truncated
        assert total == pytest.approx(1.0)
    assert renamed > 0
    with pytest.raises(ValueError, match="venue_names must be one of"):
        gym.make("Dialog-Chat-v1", venue_names="random")
