"""`python -m local.host --port 7071`: run function_app.py the way `func start` would."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from local.host.config import HostConfig, apply_local_settings
from local.host.discovery import load_function_app
from local.host.principal import principal_from_environment, stand_in_for_authentication
from local.host.runtime import HostRuntime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.host", description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument(
        "--script-root", type=Path, default=Path.cwd(), help="folder holding function_app.py"
    )
    parser.add_argument(
        "--queue-lease",
        type=float,
        default=600.0,
        help="seconds a dequeued message stays invisible while its function runs (renewed)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    script_root: Path = args.script_root.resolve()
    apply_local_settings(script_root)
    # The host stands in for App Service Authentication (local/host/principal.py).
    principal = principal_from_environment(os.environ)
    stand_in_for_authentication()
    try:
        config = HostConfig.load(script_root)
        app = load_function_app(script_root)
        runtime = HostRuntime(
            app, config, queue_lease_seconds=args.queue_lease, principal=principal
        )
    except Exception as error:  # start-up fails with one line naming the problem
        print(f"error: {error}", file=sys.stderr)
        return 1
    server = uvicorn.Server(
        uvicorn.Config(
            runtime.asgi_app(), host=args.host, port=args.port, log_level="warning", lifespan="on"
        )
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to whatever
    # handler was installed before it: make that a normal exit, since the stop was clean.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_cleanly)
    server.run()
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
