"""``dialog-bench serve-env ENV_ID``: a registered env served over OpenEnv (extra ``openenv``).

Each WebSocket connection to ``/ws`` is a session with its own env, seeded by its own
``reset``; openenv's ``EnvClient`` (:class:`dialog_env.integrations.openenv.
DialogEnvClient` for these envs) speaks it. Sessions end when the client disconnects or
after ``--idle-timeout`` seconds without a call; past ``--max-sessions`` a new connection
gets openenv's ``CAPACITY_REACHED`` error. ``/reset``, ``/step``, ``/state``, ``/schema``,
``/metadata`` and ``/health`` are openenv's HTTP endpoints (``/docs`` lists them). Binds to
loopback unless told otherwise. See :mod:`dialog_env.integrations.openenv`.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-env",
        help="serve an env over OpenEnv's HTTP and WebSocket API (extra openenv)",
        description="Serve ENV_ID with openenv-core: one env per WebSocket session at /ws "
        "(reset with a seed, step, state), a cap on sessions and an idle timeout; "
        "openenv's EnvClient (dialog_env.integrations.openenv.DialogEnvClient) connects.",
    )
    p.add_argument("env_id", metavar="ENV_ID", help="a registered env id, e.g. Dialog-v1")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    p.add_argument(
        "--split", default=None, choices=("train", "test"), help="goal split (env's default)"
    )
    p.add_argument(
        "--user-model",
        default=None,
        metavar="MODEL",
        help='the user\'s voice: "tiny", "template" or a model directory (env\'s default)',
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=64,
        metavar="N",
        help="concurrent sessions at most; more get CAPACITY_REACHED (default 64)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="close a session idle this many seconds (default 600; 0: never)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    if args.idle_timeout < 0:
        raise ValueError(f"--idle-timeout must be >= 0, got {args.idle_timeout}")
    import uvicorn

    from dialog_env.integrations.openenv import make_server

    env_kwargs = {
        key: value
        for key, value in (("split", args.split), ("user_model", args.user_model))
        if value is not None
    }
    app, _ = make_server(
        args.env_id,
        max_sessions=args.max_sessions,
        idle_timeout_s=args.idle_timeout or None,
        **env_kwargs,
    )
    print(
        f"serving {args.env_id} over OpenEnv at ws://{args.host}:{args.port}/ws "
        f"(up to {args.max_sessions} sessions; Ctrl-C stops)",
        flush=True,
    )
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning"
    )
    return 0
