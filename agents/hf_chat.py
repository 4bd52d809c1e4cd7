"""Any local chat model as an agent: prompted with its own chat template, zero-shot.

A chat model (a transformers causal-LM directory whose tokenizer has a ``chat_template``,
e.g. an instruct model) plays the booking task as it comes: a system prompt states the
task and the tool syntax (:func:`booking_system_prompt`), the transcript becomes chat
messages with roles (:func:`transcript_messages`), the template renders them with the
generation prompt, and the model writes the next message. Its paradigm is ``zero-shot``.

- Batched: ``act_batch`` left-pads the prompts and decodes them together with a KV cache
  (:mod:`dialog_env.lm.generation`); the prompt pass keeps only the last position's
  logits, since a real vocabulary (150k tokens) over every prompt position is gigabytes.
- Greedy (``temperature=0``, the default) or sampled: a message's randomness is drawn
  from ``(seed, sha256 of its prompt)``, so the same seed and transcript give the same
  message whatever the batch it was decoded in, and ``--batch-size`` changes no result.
- Safe: loaded through :func:`dialog_env.lm.loading.load_causal_lm`, safetensors only
  (``use_safetensors=True``), never remote code (``trust_remote_code=False``),
  ``local_files_only=True``; a directory with pickle weights is refused. Its chat
  template renders within bounds of size, time and memory (:mod:`agents.chat_template`).

How to load one::

    load_agent("hf:/models/Qwen2.5-0.5B-Instruct")  # CUDA when there is one, else CPU
    HFChatAgent.from_pretrained(path, device="cuda", temperature=0.7)

or as a checkpoint directory (what ``dialog-bench submit --checkpoint`` takes)::

    config.json   {"agent": "hf-chat", "temperature": 0.0, "max_new_tokens": 96, ...}
    lm/           the chat model's transformers directory

A reply is sent as written, except that when one of its lines starts with a tool call
(``[search]``, ``[book]``), that line alone is sent: instruct models like to announce
a call before making it, and the env reads a tool call only at a message's start.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.base import PARADIGMS, BaseAgent
from agents.chat_template import TemplateRefused, check_template_source, render_chat
from dialog_env.chat_messages import TOOL_ROLES, booking_system_prompt, transcript_messages

__all__ = [
    "HF_PREFIX",
    "HFChatAgent",
    "booking_system_prompt",
    "extract_message",
    "transcript_messages",
]

#: ``load_agent("hf:PATH")`` loads the chat model in directory PATH.
HF_PREFIX = "hf:"
LM_SUBDIR = "lm"
DEFAULT_MAX_NEW_TOKENS = 96
_TOOL_LINE = re.compile(r"^\s*`*\s*(\[(?:search|book)\].*?)\s*`*\s*$")


def extract_message(reply: str) -> str:
    """The message to send for a model's ``reply``: its first tool-call line if it has one.

    >>> extract_message("Let me look.\\n`[search] area=west`")
    '[search] area=west'
    >>> extract_message("Hello! How can I help?")
    'Hello! How can I help?'
    """
    for line in reply.splitlines():
        match = _TOOL_LINE.match(line)
        if match:
            return match.group(1)
    return reply.strip()


class HFChatAgent(BaseAgent):
    """A local chat model, prompted with its chat template (paradigm ``zero-shot``)."""

    interface = "text"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "hf-chat",
        paradigm: str = "zero-shot",
        system_prompt: str | None = None,
        temperature: float = 0.0,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        tool_role: str = "user",
        max_batch: int = 32,
        source_directory: Path | None = None,
    ):
        super().__init__()
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"{name}: the tokenizer has no chat_template, so there is no way to prompt it "
                "as a chat model (an LM trained by `dialog-bench pretrain` loads as a checkpoint)"
            )
        check_template_source(tokenizer.chat_template, name)
        if paradigm not in PARADIGMS:
            raise ValueError(f"paradigm must be one of {PARADIGMS}, got {paradigm!r}")
        if isinstance(temperature, bool) or not 0 <= float(temperature) <= 5:
            raise ValueError(f"temperature must be a number in [0, 5], got {temperature!r}")
        for field, value in (("max_new_tokens", max_new_tokens), ("max_batch", max_batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")
        if tool_role not in TOOL_ROLES:
            raise ValueError(f"tool_role must be one of {TOOL_ROLES}, got {tool_role!r}")
        self.model, self.tokenizer = model, tokenizer
        self.name, self.paradigm = name, paradigm
        self.system_prompt = booking_system_prompt() if system_prompt is None else system_prompt
        self.temperature, self.max_new_tokens = float(temperature), max_new_tokens
        self.tool_role, self.max_batch = tool_role, max_batch
        #: What played, for the leaderboard's model hash (``leaderboard.agent_card``).
        self.source_directory = source_directory
        self.context = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        if max_new_tokens > self.context // 2:
            raise ValueError(
                f"max_new_tokens {max_new_tokens} is over half the context ({self.context})"
            )
        self.seed = 0
        self._system_folded = not self._template_takes_system()

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", **options: Any):
        """The chat model in transformers directory ``path`` on ``device`` (``"auto"``:
        CUDA when torch sees one, else CPU); ``options`` go to the constructor."""
        from dialog_env.lm.loading import load_causal_lm

        path = Path(path).expanduser()
        lm = load_causal_lm(path, _auto_device(device))
        name = _entry_name(path.resolve().name)
        options.setdefault("source_directory", path)
        return cls(lm.model, lm.tokenizer, name=name, **options)

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> HFChatAgent:
        """A checkpoint directory of kind ``hf-chat``: ``config.json`` and ``lm/``."""
        from agents.checkpoint import read_config

        config = read_config(path)
        options = {k: v for k, v in config.items() if k not in ("agent", "interface")}
        agent = cls.from_pretrained(path / LM_SUBDIR, device, **options)
        agent.name, agent.source_directory = _entry_name(Path(path).resolve().name), None
        return agent

    # -- the Agent protocol ------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Fix the sampling seed (``None``: a fresh one); greedy decoding ignores it."""
        super().reset(seed)
        self.seed = int(self.rng.integers(2**63)) if seed is None else int(seed)

    def act(self, observation: str) -> str:
        return self.act_batch([observation])[0]

    def act_batch(self, observations: Sequence[str]) -> list[str]:
        """The next message of each conversation, decoded ``max_batch`` at a time."""
        prompts = [self.prompt_text(o) for o in observations]
        replies: list[str] = []
        for start in range(0, len(prompts), self.max_batch):
            replies += self._generate(prompts[start : start + self.max_batch])
        return [extract_message(r) for r in replies]

    # -- prompting ---------------------------------------------------------------------------
    def messages(self, observation: str) -> list[dict[str, str]]:
        """The chat messages for ``observation``, as the template will see them."""
        messages = transcript_messages(observation, self.system_prompt, self.tool_role)
        if self._system_folded and messages and messages[0]["role"] == "system":
            system, rest = messages[0]["content"], messages[1:]
            if rest and rest[0]["role"] == "user":
                rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
            else:
                rest.insert(0, {"role": "user", "content": system})
            messages = rest
        return messages

    def prompt_text(self, observation: str) -> str:
        """The rendered prompt: the chat template over the messages, with the generation
        prompt; the oldest turns are left out when it would not fit the context."""
        messages = self.messages(observation)
        keep = self.context - self.max_new_tokens
        while True:
            text = self._render(messages)
            fixed = 1 + (messages[0]["role"] == "system")
            if len(messages) <= fixed or self._count(text) <= keep:
                return text
            del messages[fixed - 1]  # the oldest turn after the system prompt

    def _render(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self.tokenizer, messages, self.name)

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _template_takes_system(self) -> bool:
        probe = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        try:
            return "s" in self._render(probe)
        except TemplateRefused:  # over the bounds: refused at load time
            raise
        except Exception:  # templates such as Gemma's raise on a system message
            return False

    # -- decoding ----------------------------------------------------------------------------
    def _stop_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(eos if isinstance(eos, list) else [eos])
        ids.discard(None)
        if not ids:
            raise ValueError(f"{self.name}: neither the tokenizer nor the model names an EOS")
        return sorted(ids)

    def _uniforms(self, prompts: Sequence[str]):
        """Per prompt, ``max_new_tokens`` uniforms from ``(seed, sha256(prompt))``."""
        import numpy as np
        import torch

        rows = []
        for text in prompts:
            digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng([self.seed, digest]).random(self.max_new_tokens))
        return torch.as_tensor(np.stack(rows), dtype=torch.float64)

    def _generate(self, prompts: Sequence[str]) -> list[str]:
        import torch

        from dialog_env.lm.generation import decode_after, greedy, left_pad

        stop_ids = self._stop_ids()
        pad = self.tokenizer.pad_token_id
        pad = stop_ids[0] if pad is None else pad
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        keep = self.context - self.max_new_tokens
        encoded = [ids[-keep:] for ids in encoded]
        device = next(self.model.parameters()).device
        choose = greedy
        if self.temperature > 0:
            uniforms = self._uniforms(prompts).to(device)

            def choose(logprobs, t: int, rows):  # inverse CDF: a pure function of u
                cdf = torch.softmax(logprobs / self.temperature, dim=-1).cumsum(-1)
                target = (uniforms[rows, t] * cdf[:, -1]).unsqueeze(-1)
                return torch.searchsorted(cdf, target).squeeze(-1).clamp(max=cdf.size(-1) - 1)

        ids, mask, positions = left_pad(encoded, pad, device)
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **self._last_logits_only(),
            )
        past = getattr(out, "cache", None)
        past = out.past_key_values if past is None else past
        rows = torch.arange(len(encoded), device=device)
        first = choose(torch.log_softmax(out.logits[:, -1, :].double(), dim=-1), 0, rows)
        tokens = [[t] for t in first.tolist()]
        if self.max_new_tokens > 1:
            rest = decode_after(
                self.model,
                past,
                first.unsqueeze(-1),
                torch.cat([mask, torch.ones_like(first).unsqueeze(-1)], dim=-1),
                positions[:, -1:] + 1,
                self.max_new_tokens - 1,
                stop_ids,
                pad,
                lambda logprobs, t, rows: choose(logprobs, t + 1, rows),
            )
            tokens = [head + tail for head, tail in zip(tokens, rest.tokens, strict=True)]
        stops = set(stop_ids)
        texts = []
        for row in tokens:
            cut = next((k for k, t in enumerate(row) if t in stops), len(row))
            texts.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return texts

    def _last_logits_only(self) -> dict[str, int]:
        forward = getattr(type(self.model), "forward", None)
        params = inspect.signature(forward).parameters if forward else {}
        return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def _auto_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _entry_name(directory_name: str) -> str:
    """A leaderboard entry name for a model directory (letters, digits, ``_.+-``)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "-", directory_name).lstrip("_.+-")[:64]
    return name or "hf-chat"
