"""An SB3 policy over the act-level interface, loaded from safetensors + JSON (no pickle).

It reads the transcript like the expert does (the rule-based tracker), turns the tracked
state into the state vector of ``Dialog-Acts-v1``, picks an act with the policy and
speaks it through the shared realizer: a text agent whose decisions are discrete acts.

A *modular* policy (config ``"nlu": "tagger"``, paradigm ``modular``) was trained on the
state the tracker builds from the shipped slot tagger's reading of the user
(``Dialog-Acts-v1`` with ``nlu="tagger"``), and tracks the transcript the same way:
tagger -> tracker -> policy -> templates. Its config records the tagger's weights hash
(``nlu_sha256``), and it refuses to load beside another tagger.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import BaseAgent
from agents.checkpoint import SB3_ACTIVATIONS, SB3_ALGOS, SB3_NLUS, WEIGHTS, read_config
from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS, realize
from dialog_env.tasks.booking.features import STATE_FEATURES, state_vector
from dialog_env.tasks.booking.task import nlu_reader
from dialog_env.tasks.booking.tracker import track

__all__ = ["SB3Agent", "build_policy", "policy_config", "tagger_sha256"]

ALGOS, ACTIVATIONS = SB3_ALGOS, SB3_ACTIVATIONS


def _spaces():
    from gymnasium.spaces import Box, Discrete

    return Box(0.0, 1.0, shape=(len(STATE_FEATURES),), dtype=np.float32), Discrete(
        len(ASSISTANT_ACTS)
    )


def policy_config(algo: str, net_arch: list[int], activation: str) -> dict[str, Any]:
    """The JSON that rebuilds a policy: no classes, no callables, only names and numbers."""
    if algo not in ALGOS or activation not in ACTIVATIONS:
        raise ValueError(f"algo must be in {ALGOS} and activation in {ACTIVATIONS}")
    return {
        "agent": "sb3",
        "algo": algo,
        "net_arch": [int(n) for n in net_arch],
        "activation": activation,
        "observation": "state",
        "state_features": list(STATE_FEATURES),
        "assistant_acts": list(ASSISTANT_ACTS),
    }


def tagger_sha256() -> str:
    """The sha256 of the shipped slot tagger's weights (a modular policy's ``nlu_sha256``)."""
    from dialog_env.lm.model_files import file_sha256
    from dialog_env.tasks.booking.tagger import SHIPPED_TAGGER_DIR

    return file_sha256(SHIPPED_TAGGER_DIR / WEIGHTS)


def build_policy(config: dict[str, Any]):
    """An untrained SB3 policy of the configured shape, on the CPU."""
    import torch.nn as nn

    obs_space, act_space = _spaces()
    kwargs = {
        "net_arch": config["net_arch"],
        "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[config["activation"]],
    }
    if config["algo"] == "dqn":
        from stable_baselines3.dqn.policies import DQNPolicy

        return DQNPolicy(obs_space, act_space, lambda _: 0.0, **kwargs)
    from stable_baselines3.common.policies import ActorCriticPolicy

    return ActorCriticPolicy(obs_space, act_space, lambda _: 0.0, **kwargs)


class SB3Agent(BaseAgent):
    """Acts with an SB3 policy (PPO, A2C or DQN) trained on ``Dialog-Acts-v1``.

    Greedy by default (``temperature=0``): DQN takes ``argmax_a Q(s, a)``, PPO and A2C
    their most likely act. With ``temperature > 0`` it samples, with the generator that
    ``reset(seed)`` seeds: DQN from the Boltzmann policy over its Q-values,
    ``pi(a|s) = exp(Q(s,a)/T) / sum_b exp(Q(s,b)/T)``, PPO and A2C from their own
    distribution with its logits divided by ``T`` (``T = 1``: the policy as trained).
    ``nlu``: what reads the user's turns for its tracker, ``"rule"`` (the parser: paradigm
    ``rl``) or ``"tagger"`` (the shipped slot tagger: paradigm ``modular``).
    """

    interface = "act"

    def __init__(self, policy, name: str = "sb3", temperature: float = 0.0, nlu: str = "rule"):
        super().__init__()
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        if nlu not in SB3_NLUS:
            raise ValueError(f"nlu must be one of {SB3_NLUS}, got {nlu!r}")
        self.policy, self.name, self.temperature = policy, name, float(temperature)
        self.nlu, self.read_user = nlu, nlu_reader(nlu)
        self.paradigm = "rl" if nlu == "rule" else "modular"
        self.policy.set_training_mode(False)

    @classmethod
    def load(cls, path: Path, temperature: float = 0.0) -> SB3Agent:
        """The policy of checkpoint ``path``: its config checked (``read_config``), its
        weights' header checked against the file, then the weights loaded; any flaw is a
        one-line ``ValueError`` that names the file."""
        from safetensors.torch import load_file

        from dialog_env.lm.model_files import check_safetensors

        config = read_config(path)
        if config["state_features"] != list(STATE_FEATURES) or config["assistant_acts"] != list(
            ASSISTANT_ACTS
        ):
            raise ValueError(
                f"{path} was trained on another state vector or act set than this "
                "version of Dialog-Acts-v1 has; retrain it"
            )
        nlu = _checked_nlu(path, config)
        weights = path / WEIGHTS
        if not weights.is_file():
            raise ValueError(f"{path} has no {WEIGHTS}")
        check_safetensors(weights)
        policy = build_policy(config)
        try:
            policy.load_state_dict(load_file(str(weights)))
        except Exception as err:  # SafetensorError, or tensors of other names or shapes
            reason = " ".join(str(err).split())[:300]
            raise ValueError(
                f"{weights} does not hold this policy's weights ({type(err).__name__}: {reason})"
            ) from None
        agent = cls(policy, name=path.name, temperature=temperature, nlu=nlu)
        if nlu == "tagger":  # what decides its acts: the policy and the tagger
            from dialog_env.lm.model_files import directory_sha256
            from dialog_env.tasks.booking.tagger import SHIPPED_TAGGER_DIR

            parts = [directory_sha256(p) for p in (path, SHIPPED_TAGGER_DIR)]
            agent.model_sha256 = hashlib.sha256(" ".join(parts).encode()).hexdigest()
        return agent

    def track(self, observation: str):
        """The tracked state of a transcript, its user turns read by the agent's NLU."""
        return track(observation, nlu=self.read_user)

    def action_probabilities(self, observation: str):
        """The distribution this agent samples its act from at ``temperature > 0``."""
        return self._probabilities(state_vector(self.track(observation)))

    def _probabilities(self, vector):
        import torch

        if not self.temperature:
            raise ValueError("a greedy agent (temperature 0) samples nothing")
        obs = torch.as_tensor(vector, dtype=torch.float32)[None]
        with torch.no_grad():
            if hasattr(self.policy, "q_net"):  # DQN
                logits = self.policy.q_net(obs)
            else:
                logits = self.policy.get_distribution(obs).distribution.logits
            return torch.softmax(logits[0].double() / self.temperature, -1).numpy()

    def _act_id(self, state) -> int:
        vector = state_vector(state)
        if self.temperature:
            p = self._probabilities(vector)
            return int(self.rng.choice(len(p), p=p / p.sum()))
        action, _ = self.policy.predict(vector, deterministic=True)
        return int(action)

    def act_id(self, observation: str) -> int:
        return self._act_id(self.track(observation))

    def act(self, observation: str) -> str:
        state = self.track(observation)
        return realize(ASSISTANT_ACTS[self._act_id(state)], state)


def _checked_nlu(path: Path, config: dict[str, Any]) -> str:
    """The config's ``nlu``, checked against its paradigm and, for the tagger, against
    the shipped tagger's weights (``nlu_sha256``); a one-line ``ValueError`` otherwise."""
    nlu = config.get("nlu", "rule")
    paradigm = config.get("paradigm", "rl")
    if (paradigm == "modular") != (nlu == "tagger"):
        raise ValueError(
            f"{path}: paradigm {paradigm!r} with nlu {nlu!r}: a modular policy reads with "
            "the tagger, an rl one with the parser"
        )
    if nlu == "tagger" and config.get("nlu_sha256") not in (None, tagger_sha256()):
        raise ValueError(
            f"{path} was trained on the state of another slot tagger than the shipped one "
            f"(nlu_sha256 {config['nlu_sha256'][:12]}...); retrain it"
        )
    return nlu
