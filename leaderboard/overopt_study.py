"""The over-optimization study: every curve of it, best-of-n and RL, in one JSON file.

A *curve* is gold and proxy against the KL from the start, for one way of optimizing one
proxy: best-of-n over the start (``python -m baselines.bon_curve``: one curve per proxy,
``n`` = 1, 2, 4, ...; KL_bon analytic, nats per reply) or an RL run (a ``train grpo``
checkpoint's manifest: its ``curve``, one point per dev evaluation; KL measured, k1 on the
policy's own samples, nats per episode). :func:`collect_study` reads them into one study
(``leaderboard/overopt_study.json`` in a checkout); :mod:`leaderboard.overopt_verdicts`
fits and judges them and :mod:`leaderboard.overopt_report` draws and tabulates them.

A study file::

    {"kind": "over-optimization study", "env_id": "Dialog-Chat-v1", "command": "...",
     "curves": {LABEL: {"kind": "bon" | "rl", "proxy": NAME, "rm": [RM, ...],
                        "combine": "mean" | "worst" | None, "beta": KL coefficient | None,
                        "source": FILE, "command": ..., "init": ..., "kl_unit": ...,
                        "eval_episodes": N | None, "points": [{"kl", "dev_gold",
                        "dev_return", ...}, ...]}}}

``rm`` names the reward models the curve optimized (``["shipped"]``, one directory, or an
ensemble's members), ``proxy`` is its short name (an RM directory's name, ``shipped``,
``ensemble-mean(rm-a,rm-b)``, or ``gold`` for the control that optimizes the judge
itself). Points are the sources' points, unchanged, in order; the first is the start
(``n = 1``, iteration 0).

>>> rl = curve_from_manifest({"config": {"beta": 0.1, "env_kwargs": '{"reward": "gold"}',
...     "eval_episodes": 100}, "curve": [{"kl": 0.0, "dev_gold": 0.2, "dev_return": 0.2}]},
...     "runs/ckpt/rl-gold")
>>> rl["kind"], rl["proxy"], rl["beta"], rl["eval_episodes"]
('rl', 'gold', 0.1, 100)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.checkpoint import MANIFEST

__all__ = [
    "CURVE_KINDS",
    "OUT_STUDY",
    "STUDY_KIND",
    "collect_study",
    "curve_from_manifest",
    "curves_from_bon_file",
    "curves_from_rl_source",
    "proxy_of_env_kwargs",
    "read_study",
    "rm_name",
    "usable_points",
]

STUDY_KIND = "over-optimization study"
#: ``bon``: best-of-n over the start; ``rl``: an RL run from it.
CURVE_KINDS = ("bon", "rl")
#: Where ``dialog-bench overopt --bon/--rl`` writes the study, relative to the working
#: directory (from a checkout's root: the file the docs' figure and table are rebuilt from).
OUT_STUDY = Path("leaderboard") / "overopt_study.json"

KL_UNITS = {
    "bon": "KL_bon = log n - (n - 1) / n, nats per reply (analytic)",
    "rl": "k1 on the policy's own samples, nats per episode (measured)",
}
_NEEDED = ("kl", "dev_gold", "dev_return")


def usable_points(points: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The points that have a number for ``kl``, ``dev_gold`` and ``dev_return``, in order."""
    return [
        p
        for p in points
        if all(
            isinstance(p.get(k), (int, float)) and not isinstance(p.get(k), bool) for k in _NEEDED
        )
    ]


def rm_name(path: str) -> str:
    """An RM's short name: its directory's name (``runs/rm-a`` -> ``rm-a``), or ``shipped``."""
    return Path(str(path).rstrip("/")).name or str(path)


def _proxy_name(rm: Sequence[str], combine: str | None) -> str:
    """``gold`` (no RM), the one RM's name, or ``ensemble-<combine>(<members>)``."""
    if not rm:
        return "gold"
    if len(rm) == 1:
        return rm_name(rm[0])
    return f"ensemble-{combine or 'mean'}({','.join(rm_name(p) for p in rm)})"


def proxy_of_env_kwargs(env_kwargs: str | Mapping[str, Any] | None) -> tuple[list[str], str | None]:
    """The reward models an env with ``env_kwargs`` rewards by, and the ensemble's rule:
    ``([], None)`` for ``reward="gold"``.

    >>> proxy_of_env_kwargs('{"reward": "rm"}'), proxy_of_env_kwargs(None)
    ((['shipped'], None), (['shipped'], None))
    >>> kwargs = {"reward": "rm-ensemble", "reward_models": ["a", "b"], "ensemble": "worst"}
    >>> proxy_of_env_kwargs(kwargs)
    (['a', 'b'], 'worst')
    """
    kwargs = json.loads(env_kwargs) if isinstance(env_kwargs, str) else dict(env_kwargs or {})
    reward = kwargs.get("reward", "rm")
    if reward == "gold":
        return [], None
    if reward == "rm-ensemble":
        return [str(p) for p in kwargs.get("reward_models", [])], kwargs.get("ensemble", "mean")
    if reward != "rm":
        raise ValueError(f"unknown chat reward {reward!r} (rm, rm-ensemble or gold)")
    return [str(kwargs.get("reward_model") or "shipped")], None


def _flag_value(command: str, flag: str) -> str | None:
    """The value after ``flag`` in a recorded command line (a JSON object read whole)."""
    at = command.find(f"{flag} ")
    if at < 0:
        return None
    rest = command[at + len(flag) + 1 :].lstrip()
    if rest.startswith("{"):
        obj, end = json.JSONDecoder().raw_decode(rest)
        return json.dumps(obj)
    match = re.match(r"\S+", rest)
    return match.group(0) if match else None


def _curve(kind: str, rm: list[str], combine: str | None, **fields: Any) -> dict[str, Any]:
    points = [dict(p) for p in usable_points(fields.pop("points"))]
    source = fields.get("source")
    if not points:
        raise ValueError(f"{source}: no point with kl, dev_gold and dev_return")
    return {
        "kind": kind,
        "proxy": _proxy_name(rm, combine),
        "rm": rm,
        "combine": combine if len(rm) > 1 else None,
        "beta": fields.get("beta"),
        "source": source,
        "command": fields.get("command"),
        "init": fields.get("init"),
        "kl_unit": KL_UNITS[kind],
        "eval_episodes": fields.get("eval_episodes"),
        "points": points,
    }


def curve_from_manifest(manifest: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The study's curve of a ``train grpo`` manifest (its ``curve``, ``config`` and
    ``command``); the proxy is read from the config's ``env_kwargs``."""
    if not isinstance(manifest.get("curve"), list):
        raise ValueError(f"{source}: its manifest has no learning curve ('curve')")
    config = manifest.get("config") or {}
    rm, combine = proxy_of_env_kwargs(config.get("env_kwargs", manifest.get("env_kwargs")))
    return _curve(
        "rl",
        rm,
        combine,
        points=manifest["curve"],
        beta=config.get("beta"),
        source=source,
        command=manifest.get("command"),
        init=config.get("init", manifest.get("init")),
        eval_episodes=config.get("eval_episodes"),
    )


def _curve_from_old_run(run: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A run of an ``overoptimization.json`` written by ``dialog-bench overopt CHECKPOINT``
    (its curve, beta and command; the reward read from the command's ``--env-kwargs``)."""
    command = run.get("command") or ""
    rm, combine = proxy_of_env_kwargs(_flag_value(command, "--env-kwargs"))
    episodes = _flag_value(command, "--eval-episodes")
    return _curve(
        "rl",
        rm,
        combine,
        points=run.get("curve") or [],
        beta=run.get("beta"),
        source=source,
        command=command or None,
        init=_flag_value(command, "--init"),
        eval_episodes=int(episodes) if episodes and episodes.isdigit() else None,
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not JSON ({err})") from None


def curves_from_rl_source(path: str | Path) -> list[dict[str, Any]]:
    """The RL curves of ``path``: a ``train grpo`` checkpoint directory, its
    ``manifest.json``, or an ``overoptimization.json`` of ``dialog-bench overopt
    CHECKPOINT...`` (each of its runs)."""
    path = Path(path)
    file = path / MANIFEST if path.is_dir() else path
    data = _read_json(file)
    if not isinstance(data, dict):
        raise ValueError(f"{file}: not a manifest (a JSON object)")
    if isinstance(data.get("runs"), dict):
        return [
            _curve_from_old_run(run, f"{path}#{label}")
            for label, run in data["runs"].items()
            if "n" not in (run.get("curve") or [{}])[0]  # its best-of-n curves come by --bon
        ]
    return [curve_from_manifest(data, str(path))]


def curves_from_bon_file(path: str | Path) -> list[dict[str, Any]]:
    """The best-of-n curves of a ``baselines.bon_curve`` JSON: one per proxy (``"curves":
    {NAME: {"proxy", "points"}}``) or the older single curve (top-level ``"points"``)."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("kind") != "best-of-n curve":
        raise ValueError(f'{path}: not a best-of-n curve (no "kind": "best-of-n curve")')
    common = {"source": str(path), "command": data.get("command"), "init": data.get("init")}
    if isinstance(data.get("curves"), dict):
        items = [
            (name, c.get("proxy") or {}, c.get("points")) for name, c in data["curves"].items()
        ]
    elif isinstance(data.get("points"), list):
        items = [(None, data.get("proxy") or {}, data["points"])]
    else:
        raise ValueError(f'{path}: a best-of-n curve holds "points" or "curves"')
    curves = []
    for name, proxy, points in items:
        if not isinstance(points, list):
            raise ValueError(f"{path}: curve {name!r} has no list of points")
        rm = proxy.get("rm") or [name or "shipped"]
        rm = [str(p) for p in ([rm] if isinstance(rm, str) else rm)]
        curve = _curve("bon", rm, proxy.get("combine"), points=points, **common)
        curve["proxy"] = name or curve["proxy"]
        curves.append(curve)
    return curves


def _label(curve: Mapping[str, Any]) -> str:
    if curve["kind"] == "bon":
        return f"best-of-n, {curve['proxy']}"
    return f"RL, {curve['proxy']}, beta={curve['beta']}"


def collect_study(
    bon: Sequence[str | Path] = (),
    rl: Sequence[str | Path] = (),
    env_id: str = "Dialog-Chat-v1",
    command: str | None = None,
) -> dict[str, Any]:
    """The study (module docstring) of best-of-n curve files ``bon`` and RL sources ``rl``
    (:func:`curves_from_rl_source`); a curve is labelled by kind, proxy and beta
    (``best-of-n, rm-a``; ``RL, rm-a, beta=0.1``), a repeated label gets its source's name."""
    curves: dict[str, dict[str, Any]] = {}
    found = [c for path in bon for c in curves_from_bon_file(path)]
    found += [c for path in rl for c in curves_from_rl_source(path)]
    if not found:
        raise ValueError("give best-of-n curve files (--bon), RL checkpoints (--rl), or both")
    for curve in found:
        label = _label(curve)
        if label in curves:  # named by its file, or by its run's directory
            source = Path(str(curve["source"]).split("#")[-1])
            label = f"{label} ({source.parent.name if source.name == MANIFEST else source.name})"
        curves[label] = curve
    return {"kind": STUDY_KIND, "env_id": env_id, "command": command, "curves": curves}


def read_study(path: str | Path) -> dict[str, Any]:
    """A study file, checked: a one-line ``ValueError`` naming what is wrong."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("kind") != STUDY_KIND:
        raise ValueError(f'{path}: not an over-optimization study ("kind": "{STUDY_KIND}")')
    curves = data.get("curves")
    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"{path}: the study has no curves")
    for label, curve in curves.items():
        if not isinstance(curve, dict) or curve.get("kind") not in CURVE_KINDS:
            raise ValueError(f"{path}: curve {label!r} has no kind of {CURVE_KINDS}")
        if not usable_points(curve.get("points") or []):
            raise ValueError(
                f"{path}: curve {label!r} has no point with kl, dev_gold and dev_return"
            )
    return data
