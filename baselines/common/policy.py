"""The token-level actor-critic: a causal LM that writes messages, plus a value head.

The actor is the LM itself: each token of a message is an action, taken in the state
"conversation so far + the message up to here" (our document format, see
:func:`agents.lm_agent.encode_context`). The critic is one linear layer on the LM's last
hidden state at the same position, so the policy and the value of a state come from one
forward pass. Both token-level trainers (:mod:`baselines.token_ppo`, :mod:`baselines.grpo`)
use the same three views of it:

- :meth:`TokenPolicy.sample`: whole messages for a batch of prompts, sampled token by
  token, each conversation keeping its KV cache between messages
  (:class:`~dialog_env.lm.sessions.ConversationCache`), recording each token's log-prob
  and the policy's entropy. Nothing else runs beside the decode: values and the frozen
  reference's log-probs are scored after the rollout, packed and without gradients
  (:func:`baselines.common.rollout.score_rows`), one way for both trainers.
- :meth:`TokenPolicy.evaluate_spans`: one batched forward over packed rows (several
  messages of one conversation per row) that returns each message token's log-prob and
  entropy and the value of its state, with gradients, for the update
  (:meth:`TokenPolicy.evaluate`: the same over ``prompt + message`` rows).
- :meth:`TokenPolicy.prompt_values`: V(prompt), PPO's bootstrap at the rollout's end.

A trained policy is saved as an LM agent checkpoint (``config.json``, ``lm/``, or with
``--lora`` the adapter and its base's hash: :mod:`agents.lora`) plus
``value_head.safetensors``; ``load_agent(dir)`` plays it as a greedy :class:`LMAgent`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agents.lm_agent import LM_SUBDIR, LMAgent, encode_context

__all__ = [
    "VALUE_HEAD",
    "SampledMessages",
    "TokenPolicy",
    "body_forward",
    "load_lm_dir",
    "span_reads",
]

VALUE_HEAD = "value_head.safetensors"


@dataclass
class SampledMessages:
    """One sampled message per prompt; per-token lists have one entry per message token."""

    tokens: list[list[int]]  # the stop token (``<|end|>``) included when one was emitted
    logprobs: list[list[float]]  # log pi(token | state), at temperature 1
    entropies: list[list[float]]  # entropy of pi(. | state)


def load_lm_dir(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The transformers directory of ``path`` and the agent config around it.

    ``path`` is either an LM agent checkpoint (``config.json`` + ``lm/``) or a plain
    transformers causal-LM directory such as the shipped tiny LM (config ``{}`` then).
    """
    from agents.checkpoint import read_config

    path = Path(path)
    if (path / LM_SUBDIR).is_dir():
        return path / LM_SUBDIR, read_config(path)
    return path, {}


def body_forward(model: Any, ids, mask, positions, past=None, use_cache: bool = False):
    """The last hidden states ``(B, T, H)`` of a causal LM's body, and its KV cache."""
    if hasattr(model, "get_base_model"):  # PEFT (--lora): its base_model is the adapter
        model = model.get_base_model()
    body = model.base_model
    # transformers 5 renamed ``past_key_values`` to ``cache``; pass the installed name.
    params = inspect.signature(body.forward).parameters
    out = body(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=use_cache,
        **{"cache" if "cache" in params else "past_key_values": past},
    )
    return out.last_hidden_state, (out[1] if use_cache else None)


def span_reads(
    sequences: Sequence[Sequence[int]],
    spans: Sequence[Sequence[tuple[int, int]]],
    width: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Which columns of the left-padded ``sequences`` (``width`` wide) predict a token of
    a span: column ``t`` predicts the token at ``t + 1``, so span ``[start, end)`` of a
    row is read at its columns ``[start - 1, end - 1)``, shifted by the row's padding.

    >>> span_reads([[1, 2, 3], [4, 5]], [[(1, 3)], [(1, 2)]], 3).int().tolist()
    [[1, 1, 0], [0, 1, 0]]
    """
    reads = torch.zeros(len(sequences), width, dtype=torch.bool, device=device)
    for row, (sequence, row_spans) in enumerate(zip(sequences, spans, strict=True)):
        offset = width - len(sequence)
        for start, end in row_spans:
            reads[row, offset + start - 1 : offset + end - 1] = True
    return reads


class TokenPolicy(torch.nn.Module):
    """A causal LM in our format (the actor) with a linear value head (the critic).

    Args:
        model: a transformers causal LM (trainable: pass a copy of a cached, frozen one).
        tokenizer: its tokenizer, in dialog-bench's format.
        value_head: ``Linear(hidden, 1)``; default: a new one, all zeros (V = 0 at start,
            so the critic's first gradients do not shake the LM).
        max_new_tokens: the longest message the policy writes.
        spell_codes: read and write codes one character per word (an SFT agent trained
            with ``--spell-codes``; see :func:`dialog_env.lm.codec.spell_codes`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        value_head: torch.nn.Linear | None = None,
        max_new_tokens: int = 64,
        spell_codes: bool = False,
    ):
        from dialog_env.lm.codec import MessageCodec

        super().__init__()
        self.model = model
        if value_head is None:
            value_head = torch.nn.Linear(model.config.hidden_size, 1)
            torch.nn.init.zeros_(value_head.weight)
            torch.nn.init.zeros_(value_head.bias)
        self.value_head = value_head.to(next(model.parameters()).device)
        self.tokenizer = tokenizer
        self.codec = MessageCodec(tokenizer, spell_codes=spell_codes)
        self.context = int(model.config.max_position_embeddings)
        self.max_new_tokens = max_new_tokens
        #: The LM directory the weights came from (set by :meth:`load`); a LoRA adapter
        #: trained on this policy is saved as adapting it.
        self.base_dir: Path | None = None

    # -- loading and saving ------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> TokenPolicy:
        """A trainable policy from an LM directory or an LM agent checkpoint (its value
        head too, when the checkpoint has one)."""
        import copy

        from safetensors.torch import load_file

        from dialog_env.lm.loading import load_causal_lm

        lm_dir, config = load_lm_dir(path)
        lm = load_causal_lm(lm_dir, device)
        model = copy.deepcopy(lm.model).requires_grad_(True)
        policy = cls(
            model,
            lm.tokenizer,
            max_new_tokens=int(config.get("max_new_tokens", 64)),
            spell_codes=bool(config.get("spell_codes", False)),
        )
        policy.base_dir = lm_dir  # what a LoRA adapter trained on this policy adapts
        head_file = Path(path) / VALUE_HEAD
        if head_file.is_file():
            policy.value_head.load_state_dict(load_file(str(head_file), device=device))
        return policy

    def save(self, out: str | Path, paradigm: str, env_id: str | None = None) -> Path:
        """Write an LM agent checkpoint (interface ``"token"``) with the value head;
        ``env_id``, when given, is the env it was trained to play (kept in its config)."""
        from safetensors.torch import save_file

        from agents.checkpoint import CONFIG
        from agents.lora import base_reference, is_lora, save_lora

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        config = {
            "agent": "lm",
            "paradigm": paradigm,
            "interface": "token",
            "max_new_tokens": self.max_new_tokens,
            "spell_codes": self.codec.spell_codes,
        }
        if env_id is not None:
            config["env_id"] = env_id
        if is_lora(self.model):  # --lora: the adapter and which base it adapts
            if self.base_dir is None:
                raise ValueError("a LoRA policy needs base_dir, the LM directory it adapts")
            save_lora(out, self.model)
            config |= base_reference(self.base_dir)
        else:
            self.model.save_pretrained(out / LM_SUBDIR, safe_serialization=True)
            self.tokenizer.save_pretrained(out / LM_SUBDIR)
        (out / CONFIG).write_text(json.dumps(config, indent=1) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.value_head.state_dict().items()}
        save_file(state, str(out / VALUE_HEAD))
        return out

    def agent(self, paradigm: str = "rl", name: str = "token-ppo") -> LMAgent:
        """The greedy agent that plays this policy's LM (shares its weights)."""
        return LMAgent(
            self.model,
            self.tokenizer,
            name=name,
            paradigm=paradigm,
            interface="token",
            max_new_tokens=self.max_new_tokens,
            spell_codes=self.codec.spell_codes,
        )

    # -- the network -------------------------------------------------------------------
    def encode(self, observation: str) -> list[int]:
        """The prompt for the next message: the transcript, left-cut to leave room for it."""
        return encode_context(self.codec, observation, self.context, self.max_new_tokens)

    def message_text(self, tokens: Sequence[int]) -> str:
        """The text of a sampled message (its stop token, when it has one, left off)."""
        tokens = list(tokens)
        if tokens and tokens[-1] in self.codec.end_ids:
            tokens = tokens[:-1]
        return self.codec.decode_message(tokens)

    def heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits and state values of hidden states ``(..., H)``."""
        logits = self.model.get_output_embeddings()(hidden)
        return logits, self.value_head(hidden).squeeze(-1)

    # -- rollouts ----------------------------------------------------------------------
    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        keys: Sequence[Any],
        sessions: Any,
        generator: torch.Generator,
        temperature: float = 1.0,
    ) -> SampledMessages:
        """Sample one message per prompt, batched, decoding incrementally: conversation
        ``keys[i]`` keeps its KV cache in ``sessions`` (a
        :class:`~dialog_env.lm.sessions.ConversationCache`, valid while the weights do
        not change) and only the part of its prompt that the cache lacks is fed; a row
        leaves the batch when it stops.

        ``generator`` is the only randomness, so a seeded generator gives the same
        messages again. ``temperature`` tempers the draw only: tokens come from
        ``softmax(logits / T)``, while the recorded log-probs and entropies stay those of
        the policy itself (``T = 1``), the distribution that :meth:`evaluate_spans`
        scores and training moves.
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        logps: list[list[float]] = [[] for _ in prompts]
        entropies: list[list[float]] = [[] for _ in prompts]

        def choose(logprobs: torch.Tensor, t: int, rows) -> torch.Tensor:
            probs = logprobs.exp() if temperature == 1.0 else (logprobs / temperature).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator)
            picked = logprobs.gather(-1, token).squeeze(-1).tolist()
            spread = (-(logprobs.exp() * logprobs).sum(-1)).tolist()
            for row, lp, h in zip(rows.tolist(), picked, spread, strict=True):
                logps[row].append(lp)
                entropies[row].append(h)
            return token.squeeze(-1)

        decoded = sessions.decode(
            self.model, keys, prompts, self.max_new_tokens, sorted(self.codec.end_ids), choose
        )
        return SampledMessages(tokens=decoded.tokens, logprobs=logps, entropies=entropies)

    # -- the update --------------------------------------------------------------------
    def evaluate(
        self, prompts: Sequence[Sequence[int]], messages: Sequence[Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per message token (all messages concatenated in order): its log-prob, the
        policy's entropy and the value of the state it was written in; differentiable.

        Rows are left-padded so every message ends in the last column; message token
        ``j`` of a row is predicted from the column before it.
        """
        return self.evaluate_spans(
            [[*p, *m] for p, m in zip(prompts, messages, strict=True)],
            [[(len(p), len(p) + len(m))] for p, m in zip(prompts, messages, strict=True)],
        )

    def evaluate_spans(
        self, sequences: Sequence[Sequence[int]], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`evaluate` of packed rows: row ``i`` is ``sequences[i]`` and its message
        tokens are the ``[start, end)`` ranges ``spans[i]`` (ascending, ``start >= 1``).

        A causal LM reads each token from what precedes it only, so several messages of
        one conversation score in one row exactly as each would alone after its own
        prompt, when each message's prompt is the row up to its ``start``. Per message
        token, in row order and then span order: log-prob, entropy and state value.
        """
        from dialog_env.lm.generation import left_pad

        device = next(self.parameters()).device
        ids, mask, positions = left_pad(sequences, self.codec.pad_id, device)
        reads = span_reads(sequences, spans, ids.shape[1], device)
        hidden, _ = body_forward(self.model, ids, mask, positions)
        logits, values = self.heads(hidden[reads])
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        targets = ids[:, 1:][reads[:, :-1]]
        entropy = -(logprobs.exp() * logprobs).sum(-1)
        return logprobs.gather(-1, targets[:, None]).squeeze(-1), entropy, values

    def prompt_values(self, prompts: Sequence[Sequence[int]]) -> list[float]:
        """V(prompt) for each prompt: the value before the first token of a message."""
        from dialog_env.lm.generation import left_pad

        device = next(self.parameters()).device
        with torch.inference_mode():
            ids, mask, positions = left_pad(prompts, self.codec.pad_id, device)
            hidden, _ = body_forward(self.model, ids, mask, positions)
            return self.heads(hidden[:, -1])[1].tolist()
