"""Incremental decoding: an LM agent that keeps each episode's KV cache writes the same
messages, token for token, as one that re-encodes the whole transcript every message."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from conftest import REPO_ROOT, format_transcript_dicts

from agents import load_agent
from agents.lm_agent import encode_context
from dialog_env.lm.sessions import ConversationCache, common_prefix
from leaderboard.episodes import get_episode_set
from leaderboard.rollout import AgentMessages, play_episodes

CHECKPOINTS = REPO_ROOT / "baselines" / "checkpoints"


def full_reencode(agent):
    agent.incremental = False  # keys ignored: every message re-reads the transcript
    return agent


# An SFT policy and an RL-trained one (rl-chat: GRPO, on its own env's episodes; ppo-base
# ends every episode at its first message, so it would keep no cache to reuse).
@pytest.mark.parametrize(
    ("name", "env_id"), [("sft-expert", "Dialog-v1"), ("rl-chat", "Dialog-Chat-v1")]
)
def test_incremental_messages_equal_full_reencode_over_whole_episodes(
    name, env_id, one_torch_thread
):
    episodes = get_episode_set(env_id, "dev", limit=12)
    incremental = AgentMessages(lambda: load_agent(CHECKPOINTS / name), batch_size=6)
    full = AgentMessages(lambda: full_reencode(load_agent(CHECKPOINTS / name)), batch_size=6)
    fast = play_episodes(incremental, episodes, progress=False)
    slow = play_episodes(full, episodes, progress=False)
    assert [e["turns"] for e in fast] == [e["turns"] for e in slow]
    assert [e["rewards"] for e in fast] == [e["rewards"] for e in slow]
    # Only an episode's first message, and one whose transcript was cut at the context
    # limit at another place than the message before's (its prompt shares not even its
    # first token with the conversation kept), is encoded in full.
    agent = incremental.agent
    prompts = [
        [
            encode_context(
                agent.codec,
                format_transcript_dicts(e["turns"][:k]),
                agent.context,
                agent.max_new_tokens,
            )
            for k, turn in enumerate(e["turns"])
            if turn["role"] == "assistant"
        ]
        for e in fast
    ]
    firsts = len(fast)
    cut = sum(p[0] != before[0] for ps in prompts for before, p in pairwise(ps))
    assert cut > 0  # the episodes reach the context limit: the case this counts is met
    assert agent.sessions.stats["full"] == firsts + cut
    assert agent.sessions.stats["reused"] > 0
    assert len(agent.sessions) == 0  # every episode's cache freed at its end
    assert full.agent.sessions.stats == {"reused": 0, "fed": 0, "full": 0, "shared": 0}


def _tiny_lm():
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.loading import load_causal_lm

    return load_causal_lm(TINY_MODEL_DIR)


def test_a_cached_continuation_decodes_as_a_fresh_prompt(one_torch_thread):
    from dialog_env.lm.generation import batched_decode

    lm = _tiny_lm()
    pad = lm.tokenizer.pad_token_id
    cache = ConversationCache(pad)
    first = [[1, 5, 60, 70, 80], [1, 9, 61]]
    out = cache.decode(lm.model, ["a", "b"], first, 6, stop_ids=[2])
    second = [[*first[0], *out.tokens[0], 90, 91], [*first[1], 33]]  # b's message replaced
    again = cache.decode(lm.model, ["a", "b"], second, 6, stop_ids=[2])
    fresh = batched_decode(lm.model, second, 6, [2], pad)
    assert again.tokens == fresh.tokens
    # a reused all of its cached prompt and message (bar the last token, never fed);
    # b only its own prompt, since the ids differ right after it
    assert cache.stats["reused"] == (len(first[0]) + len(out.tokens[0]) - 1) + len(first[1])


def test_a_prompt_cut_at_the_context_limit_is_encoded_in_full(one_torch_thread):
    lm = _tiny_lm()
    cache = ConversationCache(lm.tokenizer.pad_token_id)
    cache.decode(lm.model, ["a"], [[1, 5, 6, 7, 8]], 3, stop_ids=[2])
    full_before = cache.stats["full"]
    cache.decode(lm.model, ["a"], [[6, 7, 8, 9]], 3, stop_ids=[2])  # left-cut: bos gone
    assert cache.stats["full"] == full_before + 1


def test_caches_are_freed_when_dropped_and_bounded_in_number(one_torch_thread):
    lm = _tiny_lm()
    cache = ConversationCache(lm.tokenizer.pad_token_id, max_conversations=2)
    for key in "abc":
        cache.decode(lm.model, [key], [[1, 5, 6]], 2, stop_ids=[2])
    assert len(cache) == 2 and "a" not in cache  # the least recently used went first
    cache.drop("b")
    assert list(cache._kept) == ["c"]
    cache.clear()
    assert len(cache) == 0


def test_forks_continue_from_the_conversation_and_leave_it_as_it_was(one_torch_thread):
    from dialog_env.lm.generation import batched_decode

    lm = _tiny_lm()
    pad = lm.tokenizer.pad_token_id
    cache = ConversationCache(pad)
    prompt = [1, 5, 60, 70, 80]
    out = cache.decode(lm.model, ["a"], [prompt], 6, stop_ids=[2])
    assert cache.fork("a", ["a1", "a2"]) and not cache.fork("nobody", ["x"])
    assert "x" not in cache
    reused = cache.stats["reused"]
    forked = cache.decode(lm.model, ["a1", "a2"], [prompt, prompt], 6, stop_ids=[2])
    assert (
        forked.tokens
        == [out.tokens[0]] * 2
        == batched_decode(lm.model, [prompt], 6, [2], pad).tokens * 2
    )
    assert cache.stats["reused"] - reused == 2 * (len(prompt) - 1)  # the prompt, read once
    cache.drop("a1"), cache.drop("a2")
    again = cache.decode(lm.model, ["a"], [[*prompt, *out.tokens[0], 90]], 4, stop_ids=[2])
    assert (
        again.tokens
        == batched_decode(lm.model, [[*prompt, *out.tokens[0], 90]], 4, [2], pad).tokens
    )
    assert list(cache._kept) == ["a"]


def test_forks_decoded_without_keeping_give_the_same_tokens_and_copy_no_cache(
    one_torch_thread, monkeypatch
):
    from dialog_env.lm import kv_cache
    from dialog_env.lm.generation import inverse_cdf

    lm = _tiny_lm()
    cache = ConversationCache(lm.tokenizer.pad_token_id)
    prompt = [1, 5, 60, 70, 80]
    cache.decode(lm.model, ["a"], [prompt], 6, stop_ids=[2])
    uniforms = torch.rand(20, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    forks = [("a", j) for j in range(20)]  # 20 draws: twin decode (>= EXACT_ROWS rows)

    def draw(keep: bool):
        cache.fork("a", forks)
        try:
            return cache.decode(
                lm.model, forks, [prompt] * 20, 6, [2], inverse_cdf(uniforms, 1.5), keep=keep
            )
        finally:
            for fork in forks:
                cache.drop(fork)

    kept = draw(keep=True)
    copies = []
    real = kv_cache.row_cache
    monkeypatch.setattr(kv_cache, "row_cache", lambda *a: copies.append(1) or real(*a))
    dropped = draw(keep=False)
    assert dropped.tokens == kept.tokens and len({tuple(t) for t in kept.tokens}) > 1
    assert copies == []  # no row's keys and values copied out of the decode
    assert list(cache._kept) == ["a"]
    cache.fork("a", forks[:2])  # a small batch: the plain retiring decode
    few = cache.decode(
        lm.model, forks[:2], [prompt] * 2, 6, [2], inverse_cdf(uniforms[:2], 1.5), keep=False
    )
    assert few.tokens == kept.tokens[:2] and copies == [] and list(cache._kept) == ["a"]


def test_bad_calls_are_refused():
    cache = ConversationCache(pad_id=3)
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="one distinct key per prompt"):
        cache.decode(model, ["a", "a"], [[1], [1]], 2, [2])
    with pytest.raises(ValueError, match="at least one token"):
        cache.decode(model, ["a"], [[]], 2, [2])
    with pytest.raises(ValueError, match="max_conversations"):
        ConversationCache(pad_id=3, max_conversations=0)


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 3, 4]) == 3
    assert common_prefix([9], [1]) == 0
