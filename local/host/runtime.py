"""Wires discovered functions to their runners and serves them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Literal

import azure.functions as func
from starlette.applications import Starlette

from local.host.config import HostConfig
from local.host.discovery import (
    HttpFunction,
    QueueFunction,
    TimerFunction,
    describe_functions,
)
from local.host.http_routes import build_http_app
from local.host.invocation import FunctionInvoker
from local.host.principal import PRINCIPAL_SWITCH, LocalPrincipal
from local.host.queues import QueueListener
from local.host.timers import TimerRunner

log = logging.getLogger("local.host")


# Which functions a host process runs (local/host/instances.py): all of them, only the HTTP
# functions, or only the timer and queue triggers.
Runs = Literal["all", "http", "triggers"]


class HostRuntime:
    """The triggers of one function app a host process runs: HTTP routes, timers and queue
    listeners."""

    def __init__(
        self,
        app: func.FunctionApp,
        config: HostConfig,
        queue_lease_seconds: float = 600.0,
        principal: LocalPrincipal | None = None,
        runs: Runs = "all",
    ) -> None:
        self.config = config
        self.runs = runs
        # Whatever else must run before the host is healthy (the trigger process, if any).
        self.ready_elsewhere: Callable[[], bool] = lambda: True
        # Who every HTTP caller is (local/host/principal.py); None: nobody signed in.
        self.principal = principal
        self.functions = describe_functions(app)
        self._invoker = FunctionInvoker(config.queues)
        # Built now so a bad schedule stops start-up before anything runs.
        self._timers = [
            TimerRunner(f, self._invoker) for f in self.functions if isinstance(f, TimerFunction)
        ]
        self._queues = [
            QueueListener(f, config.queues, self._invoker, queue_lease_seconds)
            for f in self.functions
            if isinstance(f, QueueFunction)
        ]
        self.running = False

    async def start(self) -> None:
        if self.runs != "http":
            for listener in self._queues:
                await listener.start()
            for timer in self._timers:
                await timer.start()
        self.running = True
        for function in self.functions:
            if self.runs == "all" or (self.runs == "http") == isinstance(function, HttpFunction):
                log.info("Function %s: %s", function.name, _describe(function, self.config))
        if self.runs == "triggers":
            return
        log.info(
            "HTTP callers are signed in as %s (%s)",
            f"a principal with roles {', '.join(self.principal.roles) or '(none)'}"
            if self.principal
            else "nobody",
            PRINCIPAL_SWITCH,
        )

    async def stop(self) -> None:
        self.running = False
        for timer in self._timers:
            await timer.stop()
        for listener in self._queues:
            await listener.stop()
        await self._invoker.close()

    def asgi_app(self) -> Starlette:
        http_functions = [f for f in self.functions if isinstance(f, HttpFunction)]
        app = build_http_app(
            http_functions,
            self.config.route_prefix,
            self._invoker,
            lambda: self.running and self.ready_elsewhere(),
            principal=self.principal,
        )

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app.router.lifespan_context = lifespan
        return app


def _describe(function: object, config: HostConfig) -> str:
    if isinstance(function, HttpFunction):
        methods = ",".join(sorted(function.methods)) if function.methods else "ALL"
        return f"[{methods}] /{config.route_prefix}/{function.route}"
    if isinstance(function, TimerFunction):
        return f"timerTrigger {function.schedule}"
    if isinstance(function, QueueFunction):
        return f"queueTrigger {function.queue_name}"
    return "unknown"


def script_root_default() -> Path:
    return Path.cwd()
