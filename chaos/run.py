"""One chaos run: seeded workload + Outlook edits under faults and host kills, then settle and
verify.

What the seed decides (the same seed, the same schedule; `ChaosReport.fingerprint` is a digest
of it): every Coconut change and its ids, which webhooks are sent twice, held back, sent to which
host or lost for good, every Outlook edit and which item it goes for, where the hosts are killed
and which one, and which appointment's event Graph keeps failing on. What timing decides: which
Graph and Coconut requests the service makes and in which order (so which of them the seeded
fault draws hit), whether an edited item's event is already in the calendar, and how long
settling takes. The verdict must not depend on either.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from chaos.diagnose import CoconutJournal, GraphJournal, explain, explain_busy
from chaos.hosts import Hosts, host_logs
from chaos.outlook import OTHER_CALENDAR, OutlookActor, coconut_key
from chaos.verify import Verdict, verify
from chaos.workload import StaffMember, Workload
from local.coconut_emulator import FaultPlan
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.delivery import Backoff, WebhookSender
from local.graph_emulator.faults import FaultRule
from local.stack import WEBHOOK_SECRET, LocalStack
from sync.ops.client import OpsClient

# The notes the failing appointment is given once Graph fails on its event: a write is due.
FAILING_NOTES: Final = "Changed after Graph began failing on this event"
# Differences explained in detail when a run fails.
EXPLAINED: Final = 6


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    changes: int = 1000
    staff: int = 20
    outlook_edits: int = 200
    kills: int = 2
    # Functions hosts on the same storage; kills alternate between them.
    hosts: int = 2
    settle_seconds: float = 300.0
    fault_tail_seconds: float = 120.0
    # Rates per request; 503s are drawn only where no 429 was, hence the higher figure.
    throttle_rate: float = 0.11
    unavailable_rate: float = 0.06
    lost_rate: float = 0.03
    slow_rate: float = 0.05
    coconut_fault_rate: float = 0.05
    # Webhooks Coconut never gets accepted (lost for good): the scheduled repair must mend them.
    lost_webhook_rate: float = 0.05
    # COCONUT_RECONCILE_SCHEDULE's period, in seconds (a divisor of 60).
    reconcile_seconds: int = 30
    # One appointment's event on which Graph answers 500 to every request, for good.
    failing_event: bool = True
    host_log: Path | None = None


@dataclass(frozen=True)
class StatusCheck:
    """What an administrator reads for a staff member whose calendar cannot be fully synced."""

    staff_id: str
    cause: str
    must_say: str
    status: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("Warning", "Syncing", "Error") and self.must_say in self.reason

    def line(self) -> str:
        verdict = "names it" if self.ok else f"does not say {self.must_say!r}"
        return f"{self.staff_id} ({self.cause}): {self.status} {self.reason!r}: {verdict}"


@dataclass
class ChaosReport:
    config: ChaosConfig
    verdict: Verdict
    fingerprint: str = ""
    deliveries: int = 0
    # Deliveries Coconut gave up on (never a 2xx): must be 0 for the run to mean anything.
    undelivered: int = 0
    duplicates_sent: int = 0
    reordered: int = 0
    lost_webhooks: int = 0
    kills: list[int] = field(default_factory=list)  # which host each kill hit
    outlook_edits: int = 0
    tampers: dict[str, int] = field(default_factory=dict)
    failing: tuple[str, str, str] | None = None  # staff id, item key, event id
    statuses: list[StatusCheck] = field(default_factory=list)
    workload_seconds: float = 0.0
    # Seconds from the end of the workload until exactly the final state, faults still on.
    settled_under_faults: float | None = None
    settle_seconds: float = 0.0
    graph_counters: dict[str, Any] = field(default_factory=dict)
    diagnosis: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.undelivered and all(s.ok for s in self.statuses)

    def lines(self) -> list[str]:
        c = self.config
        graph = self.graph_counters
        kills = ", ".join(f"host {n + 1}" for n in self.kills) or "none"
        tampers = ", ".join(f"{count} {kind}" for kind, count in sorted(self.tampers.items()))
        if self.settled_under_faults is not None:
            settled = (
                f"converged with the faults still on, {self.settled_under_faults:.0f} s after "
                "the last change"
            )
        else:
            settled = f"not converged within {c.fault_tail_seconds:.0f} s with the faults on"
        failing = "none"
        if self.failing is not None:
            failing = f"{self.failing[1]} in {self.failing[0]}'s calendar"
        return [
            f"seed {c.seed} (schedule {self.fingerprint}): {c.changes} Coconut changes over "
            f"{c.staff} staff on {c.hosts} hosts, {self.outlook_edits} Outlook edits "
            f"(service events: {tampers or 'none'}), host kills: {kills}",
            f"deliveries {self.deliveries} ({self.duplicates_sent} duplicated, "
            f"{self.reordered} held back and delivered out of order, "
            f"{self.lost_webhooks} webhooks lost for good, "
            f"{self.undelivered} never accepted)",
            f"Graph requests while faults were on {graph.get('requests', 0)}: "
            f"429 {_share(graph, 'throttled')}, 503 {_share(graph, 'unavailable')} "
            f"(lost answers sent as 503 included), connections dropped {_share(graph, 'lost')}; "
            f"configured: 429 {c.throttle_rate:.0%}, 503 {c.unavailable_rate:.0%}, "
            f"lost writes {c.lost_rate:.0%}, slow {c.slow_rate:.0%}, "
            f"Coconut 429/5xx {c.coconut_fault_rate:.0%}; Graph fails for good on: {failing}",
            f"workload {self.workload_seconds:.0f} s; {settled}; "
            + (
                f"settled in {self.settle_seconds:.0f} s in all"
                if self.ok
                else f"never settled (gave up after {self.settle_seconds:.0f} s)"
            ),
            self.verdict.summary(),
            *(f"status: {check.line()}" for check in self.statuses),
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


def _number(resource_id: str) -> int:
    tail = resource_id.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


class ChaosRun:
    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        # Staff ids carry the seed: two runs of one seed name the same staff.
        self.tag = f"s{config.seed}"
        self.schedule = hashlib.sha256()
        self.journal = GraphJournal()
        self.coconut_journal = CoconutJournal(started=self.journal.started)
        self.failing: tuple[str, str, str] | None = None
        self.failing_rule = ""
        # Staff id -> the mailbox of a directory user Graph cannot serve.
        self.unserved: dict[str, str] = {}
        self.senders: list[WebhookSender] = []

    def _note(self, *parts: object) -> None:
        """Part of the schedule the seed decides (its digest is the report's fingerprint)."""
        self.schedule.update(("|".join(str(p) for p in parts) + "\n").encode())

    async def execute(self, stack: LocalStack, hosts: Hosts) -> ChaosReport:
        config = self.config
        self.journal.install(stack.graph)
        self.coconut_journal.install(stack.coconut.state)
        workload = Workload.create(config.seed, config.staff, self.tag, stack.coconut.record)
        actor = self._people(stack, workload)
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
        self._note("kills", *kill_points)
        backoff = Backoff(first_delay=0.3, max_delay=3.0, max_attempts=200)
        self.senders = [
            WebhookSender(url, WEBHOOK_SECRET, backoff=backoff) for url in hosts.webhook_urls
        ]
        try:
            return await self._execute(stack, hosts, workload, actor, report, kill_points)
        finally:
            for sender in self.senders:
                await sender.aclose()

    async def _execute(
        self,
        stack: LocalStack,
        hosts: Hosts,
        workload: Workload,
        actor: OutlookActor,
        report: ChaosReport,
        kill_points: list[int],
    ) -> ChaosReport:
        config = self.config
        started = time.monotonic()
        await self._play(stack, hosts, workload, actor, report, kill_points)
        report.workload_seconds = time.monotonic() - started

        settle_started = time.monotonic()
        # The backlog is worked off with the faults still on, for up to `fault_tail_seconds`...
        await self._settle(stack, workload, actor, report, config.fault_tail_seconds)
        if report.verdict.ok and all(s.ok for s in report.statuses):
            report.settled_under_faults = time.monotonic() - settle_started
        report.graph_counters = summarise_counters(_counters(stack))
        # ...then the faults stop (Graph keeps failing on the one event) and the service must
        # settle to exactly the final state.
        stack.graph.state.faults.configure((), 0)
        if self.failing is not None:
            self.failing_rule = stack.graph.fail_event(self.failing[2])
        stack.coconut.configure_faults(FaultPlan())
        await self._settle(stack, workload, actor, report, config.settle_seconds)
        report.settle_seconds = time.monotonic() - settle_started
        report.failing = self.failing
        report.outlook_edits, report.tampers = actor.edits, actor.tamper_counts()
        report.kills = list(hosts.kills)
        for decision in actor.decisions:
            self._note("outlook", decision)
        report.fingerprint = self.schedule.hexdigest()[:12]
        if not report.ok:
            report.diagnosis = self._diagnose(stack, actor, report, workload)
        return report

    def _people(self, stack: LocalStack, workload: Workload) -> OutlookActor:
        """Staff on Coconut's roster and in the directory, and the people in Outlook."""
        mailboxes: dict[str, str] = {}
        for member in workload.staff:
            stack.coconut.add_user(member.staff_id, member.email, "Staff", member.staff_id)
            if member.mailbox == "no user":
                continue
            user = stack.graph.add_user(
                f"{member.staff_id.lower()}@bank.onmicrosoft.com",
                mail=member.email,
                time_zone=member.time_zone,
                has_mailbox=member.has_mailbox,
            )
            if member.has_mailbox:
                mailboxes[member.staff_id] = user.id
                stack.graph.add_calendar(user.id, OTHER_CALENDAR)
            else:
                self.unserved[member.staff_id] = user.id
        # The run's clock, as the journals': their lines and the people's edits line up.
        started = self.journal.started
        return OutlookActor(
            stack.graph,
            mailboxes,
            random.Random(self.config.seed + 1),
            wanted=lambda staff_id: [
                key
                for key in workload.wanted_in(staff_id)
                # Graph's failing event is left alone: see the report on a person deleting it.
                if self.failing is None or (staff_id, key) != self.failing[:2]
            ],
            clock=lambda: time.monotonic() - started,
        )

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
            await self._people_act_late(stack, workload, actor, report)
            failing = frozenset() if self.failing is None else frozenset({self.failing[:2]})
            busy = {s: stack.coconut.external_events(s) for s in actor.mailboxes}
            report.verdict = verify(
                workload, actor, stack.graph, busy, failing=failing, unserved=self.unserved
            )
            if report.verdict.ok:
                report.statuses = await asyncio.to_thread(self._statuses, stack, workload)
                if all(s.ok for s in report.statuses):
                    return
            if time.monotonic() > deadline:
                report.statuses = await asyncio.to_thread(self._statuses, stack, workload)
                return
            await asyncio.sleep(2)

    async def _people_act_late(
        self, stack: LocalStack, workload: Workload, actor: OutlookActor, report: ChaosReport
    ) -> None:
        """What was decided during the workload but waited for the service's events: the
        tampering, and Graph failing on an event."""
        actor.follow_up()
        if self.config.failing_event and self.failing is None:
            changed = self._fail_an_event(stack, workload, actor)
            if changed is not None:
                await self._deliver([(changed, 0)], report)

    def _statuses(self, stack: LocalStack, workload: Workload) -> list[StatusCheck]:
        """The statuses of the staff whose calendars cannot be fully synced, read through the
        ops API as an administrator would."""
        wanted: list[tuple[StaffMember, str, str]] = []
        for member in workload.staff:
            if member.mailbox == "no user":
                wanted.append((member, "no Microsoft 365 user", "no Microsoft 365 user"))
            elif member.mailbox == "not enabled":
                wanted.append((member, "mailbox not enabled", "MailboxNotEnabledForRESTAPI"))
            elif self.failing is not None and member.staff_id == self.failing[0]:
                wanted.append((member, "Graph fails on one event", self.failing[1]))
        assert stack.host is not None
        checks = []
        with OpsClient(stack.host.base_url) as ops:
            for member, cause, must_say in wanted:
                try:
                    detail = ops.detail(member.staff_id)
                except Exception as error:
                    detail = {"status": "unreadable", "reason": type(error).__name__}
                checks.append(
                    StatusCheck(
                        member.staff_id,
                        cause,
                        must_say,
                        str(detail.get("status", "")),
                        str(detail.get("reason", "")),
                    )
                )
        return checks

    async def _play(
        self,
        stack: LocalStack,
        hosts: Hosts,
        workload: Workload,
        actor: OutlookActor,
        report: ChaosReport,
        kill_points: list[int],
    ) -> None:
        config = self.config
        held: list[tuple[payloads.Envelope, int]] = []
        edits_per_change = config.outlook_edits / max(config.changes, 1)
        edit_budget = 0.0
        kill_count = 0
        sent = 0
        while sent < config.changes:
            # Each change is in Coconut's record (its listings) as soon as it is made.
            batch = [workload.next_change() for _ in range(min(8, config.changes - sent))]
            sent += len(batch)
            outgoing: list[tuple[payloads.Envelope, int]] = []
            for envelope in batch:
                roll, loss = self.rng.random(), self.rng.random()
                route = (envelope, self.rng.randrange(config.hosts))
                data: Any = envelope["data"]
                self._note(envelope["type"], data["id"], data.get("revision"), route[1])
                if loss < config.lost_webhook_rate:
                    report.lost_webhooks += 1
                    self._note("lost")
                elif roll < 0.10:
                    outgoing += [route, route]
                    report.duplicates_sent += 1
                    self._note("twice")
                elif roll < 0.25:
                    held.append(route)
                    report.reordered += 1
                    self._note("held")
                else:
                    outgoing.append(route)
            if held and self.rng.random() < 0.5:
                self.rng.shuffle(held)
                released = self.rng.randrange(1, len(held) + 1)
                outgoing += held[:released]
                del held[:released]
            self.rng.shuffle(outgoing)
            await self._deliver(outgoing, report)
            edit_budget += edits_per_change * len(batch)
            while edit_budget >= 1:
                actor.act()
                edit_budget -= 1
            await self._people_act_late(stack, workload, actor, report)
            if kill_points and sent >= kill_points[0]:
                kill_points.pop(0)
                victim = (kill_count + 1) % config.hosts
                kill_count += 1
                hosts.kill(victim)
                # Coconut keeps retrying while the host is down.
                await asyncio.sleep(self.rng.uniform(0.2, 1.5))
                await asyncio.to_thread(hosts.restart, victim)
        if held:
            await self._deliver(held, report)

    async def _deliver(
        self, routes: list[tuple[payloads.Envelope, int]], report: ChaosReport
    ) -> None:
        results = await asyncio.gather(*(self.senders[host].deliver(e) for e, host in routes))
        report.deliveries += len(results)
        report.undelivered += sum(1 for r in results if not r.delivered)

    def _fail_an_event(
        self, stack: LocalStack, workload: Workload, actor: OutlookActor
    ) -> payloads.Envelope | None:
        """Once the first single-staff appointment (in booking order) has its event in the
        calendar, Graph answers 500 to every request about that event, for good; the
        appointment then changes, so the service has a write it cannot make."""
        events: dict[str, dict[str, str]] = {}
        for appointment_id in sorted(workload.appointments - workload.cancelled, key=_number):
            staff = workload.coconut.appointment(appointment_id)["attributes"]["staff"]
            if len(staff) != 1 or staff[0]["id"] not in actor.mailboxes:
                continue
            staff_id = staff[0]["id"]
            if staff_id not in events:
                events[staff_id] = {
                    coconut_key(e): str(e["id"])
                    for e in stack.graph.events(actor.mailboxes[staff_id])
                }
            key = f"appointment:{appointment_id}"
            if key in events[staff_id]:
                self.failing = (staff_id, key, events[staff_id][key])
                self.failing_rule = stack.graph.fail_event(self.failing[2])
                return workload.coconut.change_notes(appointment_id, FAILING_NOTES)
        return None

    def _diagnose(
        self, stack: LocalStack, actor: OutlookActor, report: ChaosReport, workload: Workload
    ) -> list[str]:
        verdict = report.verdict
        differences = [*verdict.missing, *verdict.duplicates, *verdict.stale, *verdict.unexpected]
        lines: list[str] = []
        logs = host_logs(self.config.host_log, self.config.hosts)
        for difference in differences[:EXPLAINED]:
            lines += explain(
                difference,
                graph=stack.graph,
                actor=actor,
                journal=self.journal,
                connection_string=stack.azurite.connection_string,
                mailboxes={**actor.mailboxes, **self.unserved},
            )
            coconut_id = difference.split()[1].rstrip(":").split(":", 1)[-1]
            for log in logs:
                for text in log.read_text(errors="replace").splitlines():
                    if f"{coconut_id} " in text or text.endswith(coconut_id):
                        lines.append(f"  {log.name}: {text[:240]}")
        for busy in verdict.busy[:EXPLAINED]:
            lines += explain_busy(
                busy,
                graph=stack.graph,
                actor=actor,
                journal=self.journal,
                coconut=self.coconut_journal,
                connection_string=stack.azurite.connection_string,
                logs=logs,
            )
        return lines


def run_chaos(config: ChaosConfig) -> ChaosReport:
    stack = LocalStack(
        timer_schedule="*/5 * * * * *",
        notifications=True,
        host_log=config.host_log,
        queue_lease=5.0,
        # A killed host's mailboxes are free again after 10 s.
        staff_lease=10,
        extra_settings={
            "COCONUT_RECONCILE_SCHEDULE": f"*/{config.reconcile_seconds} * * * * *",
            # Log lines reach the file as they are written, even from a host about to be killed.
            "PYTHONUNBUFFERED": "1",
        },
    )
    with stack:
        hosts = Hosts(stack, config.hosts, config.host_log)
        try:
            hosts.start()
            return asyncio.run(ChaosRun(config).execute(stack, hosts))
        finally:
            hosts.stop()
