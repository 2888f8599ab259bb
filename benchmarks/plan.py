"""How big each measurement is: the full run (`make bench`) and the quick one (`--quick`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DrainCase:
    """One backlog-drain run: `creates` per mailbox against `limit` requests per `window` s."""

    mailboxes: int
    creates: int
    limit: int
    window: float


@dataclass(frozen=True)
class Plan:
    quick: bool
    # webhook 202 -> event visible: (webhooks per second, seconds sent)
    webhook_rates: tuple[tuple[float, float], ...]
    webhook_staff: int
    # how long after the last webhook an event that has not appeared counts as lost
    sync_timeout: float
    # Graph writes: effective changes and no-op revisions of one appointment
    effective_changes: int
    noop_revisions: int
    # Exchange change -> Coconut: samples with notifications, samples and timer period without
    notified_samples: int
    timer_samples: int
    timer_period: int
    # quiet cycles: staff, appointments ahead in each calendar, measured cycles
    quiet_staff: int
    quiet_appointments: int
    quiet_cycles: int
    drain_cases: tuple[DrainCase, ...]
    cold_start_runs: int
    fanout_staff: int
    # burst: staff, new bookings each, deliveries at a time
    burst_staff: int
    burst_bookings: int
    burst_concurrency: tuple[int, ...]
    # history: past items of one staff member, changes measured per staff member
    history_items: int
    history_changes: int
    # scale-out: host counts, staff, new bookings each
    scale_hosts: tuple[int, ...]
    scale_staff: int
    scale_bookings: int
    # onboarding: staff, appointments already in Coconut each
    onboarding_staff: int
    onboarding_appointments: int
    # seconds one measurement may take before it is reported as failed
    time_limit: float
    log_dir: Path | None = None


FULL = Plan(
    quick=False,
    webhook_rates=((1, 20), (10, 20), (50, 10), (100, 10)),
    webhook_staff=50,
    sync_timeout=60,
    effective_changes=10,
    noop_revisions=10,
    notified_samples=20,
    timer_samples=8,
    timer_period=5,
    quiet_staff=50,
    quiet_appointments=30,
    quiet_cycles=5,
    drain_cases=(
        DrainCase(mailboxes=1, creates=181, limit=60, window=10),
        DrainCase(mailboxes=10, creates=31, limit=30, window=10),
        DrainCase(mailboxes=100, creates=4, limit=3, window=10),
    ),
    cold_start_runs=5,
    fanout_staff=10_000,
    burst_staff=20,
    burst_bookings=20,
    burst_concurrency=(5, 20, 50),
    history_items=5_000,
    # CPU time is read in 10 ms clock ticks and a change costs two or three: 60 changes each
    # keep the ratio's noise near +-0.05 (with 20, runs gave anything from 0.95 to 1.16).
    history_changes=60,
    scale_hosts=(1, 2, 3),
    scale_staff=20,
    scale_bookings=10,
    onboarding_staff=10,
    onboarding_appointments=50,
    time_limit=420,
)

QUICK = Plan(
    quick=True,
    webhook_rates=((1, 3), (10, 2), (50, 1), (100, 1)),
    webhook_staff=5,
    sync_timeout=15,
    effective_changes=3,
    noop_revisions=2,
    notified_samples=3,
    timer_samples=3,
    timer_period=2,
    quiet_staff=5,
    quiet_appointments=3,
    quiet_cycles=2,
    drain_cases=(
        # 100 mailboxes take too long for a quick run: the full run covers them.
        DrainCase(mailboxes=1, creates=21, limit=10, window=2),
        DrainCase(mailboxes=10, creates=6, limit=5, window=2),
    ),
    cold_start_runs=2,
    fanout_staff=300,
    burst_staff=5,
    burst_bookings=4,
    burst_concurrency=(5, 20),
    history_items=500,
    history_changes=5,
    scale_hosts=(1, 2),
    scale_staff=5,
    scale_bookings=4,
    onboarding_staff=3,
    onboarding_appointments=10,
    time_limit=120,
)
