"""`python -m local.host --port 7071`: run function_app.py the way `func start` would, with the
HTTP functions and the other triggers in processes of their own, as Flex Consumption scales them
(`local/host/instances.py`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

import uvicorn

from local.host.config import HostConfig, apply_local_settings
from local.host.discovery import load_function_app
from local.host.instances import TriggerProcess, run_triggers
from local.host.principal import principal_from_environment, stand_in_for_authentication
from local.host.runtime import HostRuntime, Runs


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
    parser.add_argument(
        "--single-process",
        action="store_true",
        help="run the timer and queue triggers in this process too (no trigger process)",
    )
    # The trigger process the host starts (local/host/instances.py).
    parser.add_argument("--triggers-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
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
    runs: Runs = "triggers" if args.triggers_only else "all" if args.single_process else "http"
    try:
        config = HostConfig.load(script_root)
        app = load_function_app(script_root)
        runtime = HostRuntime(
            app, config, queue_lease_seconds=args.queue_lease, principal=principal, runs=runs
        )
    except Exception as error:  # start-up fails with one line naming the problem
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.triggers_only:
        asyncio.run(run_triggers(runtime, args.ready_file))
        return 0
    if args.single_process:
        return _serve(runtime, args)
    with tempfile.TemporaryDirectory(prefix="local-host-") as scratch:
        triggers = TriggerProcess(script_root, args.queue_lease, Path(scratch) / "triggers.ready")
        runtime.ready_elsewhere = lambda: triggers.ready
        triggers.start()
        try:
            return _serve(runtime, args, triggers)
        finally:
            triggers.stop()


def _serve(
    runtime: HostRuntime, args: argparse.Namespace, triggers: TriggerProcess | None = None
) -> int:
    server = uvicorn.Server(
        uvicorn.Config(
            runtime.asgi_app(), host=args.host, port=args.port, log_level="warning", lifespan="on"
        )
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to whatever
    # handler was installed before it: make that a normal exit, since the stop was clean.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_cleanly)
    if triggers is not None:
        threading.Thread(target=_stop_when_gone, args=(triggers, server), daemon=True).start()
    server.run()
    if triggers is not None and triggers.exit_code not in (None, 0):
        return 1
    return 0


def _stop_when_gone(triggers: TriggerProcess, server: uvicorn.Server) -> None:
    """A trigger process that died takes the host down with it (as a crash would)."""
    while not server.should_exit:
        if triggers.exit_code is not None:
            logging.getLogger("local.host").error(
                "the trigger process exited with code %s; the host stops", triggers.exit_code
            )
            server.should_exit = True
            return
        time.sleep(0.25)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
