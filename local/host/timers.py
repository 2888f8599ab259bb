"""Timer triggers on six-field NCRONTAB schedules (seconds first), as the Functions host runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest
from croniter import croniter

from local.host.config import resolve_app_setting
from local.host.discovery import TimerFunction
from local.host.invocation import FunctionInvoker

log = logging.getLogger("local.host")


def parse_schedule(expression: str) -> str:
    """Resolve `%SETTING%` and check it is a six-field NCRONTAB expression."""
    schedule = resolve_app_setting(expression)
    if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
        raise ValueError(f"invalid NCRONTAB schedule {schedule!r} (six fields, seconds first)")
    return schedule


class TimerRunner:
    """Fires one timer function at each occurrence of its schedule; never overlaps itself."""

    def __init__(self, function: TimerFunction, invoker: FunctionInvoker) -> None:
        self._function = function
        self._invoker = invoker
        self._schedule = parse_schedule(function.schedule)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"timer:{self._function.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        if self._function.run_on_startup:
            await self._fire(past_due=False)
        schedule = croniter(self._schedule, datetime.now(UTC), second_at_beginning=True)
        while True:
            due: datetime = schedule.get_next(datetime)
            wait = (due - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            # Past due when the previous run overran this occurrence (the real host's flag).
            past_due = (datetime.now(UTC) - due).total_seconds() > 1.0
            await self._fire(past_due=past_due)
            # Skip occurrences missed while running, as the host does (one catch-up at most).
            schedule = croniter(self._schedule, datetime.now(UTC), second_at_beginning=True)

    async def _fire(self, past_due: bool) -> None:
        try:
            await self._invoker.invoke(
                self._function.user_function,
                self._function.trigger_arg,
                TimerRequest(past_due=past_due),
                self._function.outputs,
                function_name=self._function.name,
            )
        except Exception:
            log.exception("Executed 'Functions.%s' (Failed)", self._function.name)
