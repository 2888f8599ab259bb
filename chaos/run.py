"""One chaos run: seeded workload + Outlook edits under faults and host kills, then settle and
verify."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos.outlook import OutlookActor
from chaos.verify import Verdict, verify
from chaos.workload import Workload
from local.coconut_emulator import FaultPlan
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.delivery import Backoff, WebhookSender
from local.graph_emulator.faults import FaultRule
from local.stack import WEBHOOK_SECRET, LocalStack


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    changes: int = 1000
    staff: int = 20
    outlook_edits: int = 200
    kills: int = 2
    settle_seconds: float = 300.0
    fault_tail_seconds: float = 120.0
    # Rates per request; 503s are drawn only where no 429 was, hence the higher figure.
    throttle_rate: float = 0.11
    unavailable_rate: float = 0.06
    lost_rate: float = 0.03
    slow_rate: float = 0.05
    coconut_fault_rate: float = 0.05
    host_log: Path | None = None


@dataclass
class ChaosReport:
    config: ChaosConfig
    verdict: Verdict
    deliveries: int = 0
    # Deliveries Coconut gave up on (never a 2xx): must be 0 for the run to mean anything.
    undelivered: int = 0
    duplicates_sent: int = 0
    reordered: int = 0
    kills: int = 0
    outlook_edits: int = 0
    tampered: int = 0
    workload_seconds: float = 0.0
    settle_seconds: float = 0.0
    converged_under_faults: bool = False
    graph_counters: dict[str, Any] = field(default_factory=dict)

    def _when_converged(self) -> str:
        if self.converged_under_faults:
            return "converged while the faults were still on"
        return "converged after the faults stopped"

    def lines(self) -> list[str]:
        c = self.config
        graph = self.graph_counters
        return [
            f"seed {c.seed}: {c.changes} Coconut changes over {c.staff} staff, "
            f"{self.outlook_edits} Outlook edits ({self.tampered} of the service's events "
            f"tampered with), {self.kills} host kills",
            f"deliveries {self.deliveries} ({self.duplicates_sent} duplicated, "
            f"{self.reordered} held back and delivered out of order, "
            f"{self.undelivered} never accepted)",
            f"Graph requests while faults were on {graph.get('requests', 0)}: "
            f"429 {_share(graph, 'throttled')}, 503 {_share(graph, 'unavailable')} "
            f"(lost answers sent as 503 included), connections dropped {_share(graph, 'lost')}; "
            f"configured: 429 {c.throttle_rate:.0%}, 503 {c.unavailable_rate:.0%}, "
            f"lost writes {c.lost_rate:.0%}, slow {c.slow_rate:.0%}, "
            f"Coconut 429/5xx {c.coconut_fault_rate:.0%}",
            f"workload {self.workload_seconds:.0f} s, settled in {self.settle_seconds:.0f} s "
            f"({self._when_converged()})",
            self.verdict.summary(),
        ]


def _share(counters: Mapping[str, int], key: str) -> str:
    total = counters.get("requests", 0)
    value = counters.get(key, 0)
    return f"{value} ({100 * value / total:.1f}%)" if total else f"{value}"


def graph_faults(config: ChaosConfig) -> list[FaultRule]:
    writes = ["POST", "PATCH", "DELETE"]
    outlook = r"^/users/"
    return [
        FaultRule.from_json(rule)
        for rule in (
            {
                "kind": "throttle",
                "rate": config.throttle_rate,
                "retryAfter": 1,
                "pathPattern": outlook,
            },
            {
                "kind": "unavailable",
                "rate": config.unavailable_rate,
                "retryAfter": 1,
                "pathPattern": outlook,
            },
            {
                "kind": "lostResponse",
                "rate": config.lost_rate * 2 / 3,
                "methods": writes,
                "lostAs": "503",
                "pathPattern": outlook,
            },
            {
                "kind": "lostResponse",
                "rate": config.lost_rate / 3,
                "methods": writes,
                "lostAs": "drop",
                "pathPattern": outlook,
            },
            {
                "kind": "latency",
                "rate": config.slow_rate,
                "latencySeconds": 0.5,
                "pathPattern": outlook,
            },
        )
    ]


def _counters(stack: LocalStack) -> dict[str, Any]:
    try:
        data = httpx.get(f"{stack.graph.control_url}/counters", timeout=10).json()
    except httpx.HTTPError:
        return {}
    return data if isinstance(data, dict) else {}


def summarise_counters(raw: Mapping[str, Any]) -> dict[str, int]:
    """Totals over the emulator's per-mailbox counters (method -> status -> count)."""
    totals = {"requests": 0, "throttled": 0, "unavailable": 0, "lost": 0}
    mailboxes = raw.get("mailboxes")
    for mailbox in mailboxes.values() if isinstance(mailboxes, dict) else []:
        for by_status in (mailbox.get("requests") or {}).values():
            for status, count in by_status.items():
                totals["requests"] += int(count)
                if status == "429":
                    totals["throttled"] += int(count)
                elif status == "503":
                    totals["unavailable"] += int(count)
                elif not status.isdigit():
                    totals["lost"] += int(count)
    return totals


class ChaosRun:
    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.tag = uuid.uuid4().hex[:6]

    async def execute(self, stack: LocalStack) -> ChaosReport:
        config = self.config
        workload = Workload.create(config.seed, config.staff, self.tag)
        mailboxes: dict[str, str] = {}
        for member in workload.staff:
            stack.coconut.add_user(member.staff_id, member.email, "Staff", member.staff_id)
            if member.has_mailbox:
                user = stack.graph.add_user(
                    f"{member.staff_id.lower()}@bank.onmicrosoft.com",
                    mail=member.email,
                    time_zone=member.time_zone,
                )
                mailboxes[member.staff_id] = user.id
        actor = OutlookActor(stack.graph, mailboxes, random.Random(config.seed + 1))
        report = ChaosReport(config, Verdict())
        stack.graph.state.faults.configure(graph_faults(config), config.seed)
        stack.coconut.configure_faults(
            FaultPlan(
                throttle_rate=config.coconut_fault_rate / 2,
                server_error_rate=config.coconut_fault_rate / 2,
                retry_after_seconds=1,
                seed=config.seed,
            )
        )
        kill_points = sorted(self.rng.sample(range(1, config.changes), config.kills))
        started = time.monotonic()
        await self._play(stack, workload, actor, report, kill_points)
        report.workload_seconds = time.monotonic() - started

        settle_started = time.monotonic()
        # The backlog is worked off with the faults still on, for up to `fault_tail_seconds`...
        await self._settle(stack, workload, actor, report, config.fault_tail_seconds)
        report.converged_under_faults = report.verdict.ok
        report.graph_counters = summarise_counters(_counters(stack))
        # ...then the faults stop and the service must settle to exactly the final state.
        stack.graph.state.faults.configure((), 0)
        stack.coconut.configure_faults(FaultPlan())
        await self._settle(stack, workload, actor, report, config.settle_seconds)
        report.settle_seconds = time.monotonic() - settle_started
        report.outlook_edits, report.tampered = actor.edits, actor.tampered
        return report

    async def _settle(
        self,
        stack: LocalStack,
        workload: Workload,
        actor: OutlookActor,
        report: ChaosReport,
        within: float,
    ) -> None:
        deadline = time.monotonic() + within
        while True:
            busy = {s: stack.coconut.external_events(s) for s in actor.mailboxes}
            report.verdict = verify(workload, actor, stack.graph, busy)
            if report.verdict.ok or time.monotonic() > deadline:
                return
            await asyncio.sleep(2)

    async def _play(
        self,
        stack: LocalStack,
        workload: Workload,
        actor: OutlookActor,
        report: ChaosReport,
        kill_points: list[int],
    ) -> None:
        config = self.config
        backoff = Backoff(first_delay=0.3, max_delay=3.0, max_attempts=200)
        held: list[payloads.Envelope] = []
        edits_per_change = config.outlook_edits / max(config.changes, 1)
        edit_budget = 0.0
        # Coconut sends webhooks about changes to its own record: the record changes too.
        async with WebhookSender(
            stack.webhook_url, WEBHOOK_SECRET, backoff=backoff, record=stack.coconut.record
        ) as coconut:
            sent = 0
            while sent < config.changes:
                batch = [workload.next_change() for _ in range(min(8, config.changes - sent))]
                sent += len(batch)
                outgoing: list[payloads.Envelope] = []
                for envelope in batch:
                    roll = self.rng.random()
                    if roll < 0.10:
                        outgoing += [envelope, envelope]
                        report.duplicates_sent += 1
                    elif roll < 0.25:
                        held.append(envelope)
                        report.reordered += 1
                    else:
                        outgoing.append(envelope)
                if held and self.rng.random() < 0.5:
                    self.rng.shuffle(held)
                    released = self.rng.randrange(1, len(held) + 1)
                    outgoing += held[:released]
                    del held[:released]
                self.rng.shuffle(outgoing)
                results = await asyncio.gather(*(coconut.deliver(e) for e in outgoing))
                report.deliveries += len(results)
                report.undelivered += sum(1 for r in results if not r.delivered)
                edit_budget += edits_per_change * len(batch)
                while edit_budget >= 1:
                    actor.act()
                    edit_budget -= 1
                if kill_points and sent >= kill_points[0]:
                    kill_points.pop(0)
                    report.kills += 1
                    stack.kill_host()
                    # Coconut keeps retrying while the host is down.
                    await asyncio.sleep(self.rng.uniform(0.2, 1.5))
                    await asyncio.to_thread(stack.start_host)
            if held:
                results = await asyncio.gather(*(coconut.deliver(e) for e in held))
                report.deliveries += len(results)
                report.undelivered += sum(1 for r in results if not r.delivered)


def run_chaos(config: ChaosConfig) -> ChaosReport:
    stack = LocalStack(
        timer_schedule="*/5 * * * * *",
        notifications=True,
        host_log=config.host_log,
        queue_lease=5.0,
        # A killed host's mailboxes are free again after 10 s.
        staff_lease=10,
    )
    with stack:
        return asyncio.run(ChaosRun(config).execute(stack))
