"""Graph writes per effective change (target 1.0) and per no-op revision (target 0).

One staff member, one appointment: booked, then changed (reschedule, notes) one revision at a time,
then cancelled; then revisions that change nothing the event shows. Each step waits for the work
queue to drain; writes are the successful POST/PATCH/DELETE the Graph emulator counted for the
mailbox.
"""

from __future__ import annotations

from benchmarks.plan import Plan
from benchmarks.report import Figure, Section
from benchmarks.settle import queue_drained
from benchmarks.stacks import running_stack
from benchmarks.staff import (
    book,
    difference,
    enrol,
    graph_requests,
    new_coconut,
    sender,
    slot,
    writes,
)
from local.azurite import Azurite


async def measure(azurite: Azurite, plan: Plan) -> Section:
    section = Section(
        "graph_writes",
        "Graph writes per change",
        method=(
            f"One appointment: booked, {plan.effective_changes - 2} revisions that change the "
            "event (alternately a reschedule and new notes), cancelled — "
            f"{plan.effective_changes} effective changes; then {plan.noop_revisions} revisions "
            "of a second appointment that change nothing the event shows (same notes again). "
            "Each webhook is delivered once and the work queue drained before the next."
        ),
    )
    async with running_stack(azurite, name="writes", log_dir=plan.log_dir) as stack:
        [person] = enrol(stack, 1)
        coconut = new_coconut()
        async with sender(stack) as coconut_sender:
            before = graph_requests(stack.graph, person.mailbox)
            booked = book(coconut, person, 0)
            appointment = str(booked["data"]["id"])
            envelopes = [booked]
            for number in range(plan.effective_changes - 2):
                if number % 2 == 0:
                    start, end = slot(100 + number)
                    envelopes.append(coconut.reschedule(appointment, start, end))
                else:
                    envelopes.append(coconut.change_notes(appointment, f"revision {number}"))
            envelopes.append(coconut.cancel(appointment))
            for envelope in envelopes:
                await coconut_sender.deliver(envelope)
                await queue_drained(azurite)
            effective = difference(graph_requests(stack.graph, person.mailbox), before)

            steady = book(coconut, person, 1)
            await coconut_sender.deliver(steady)
            steady_id = str(steady["data"]["id"])
            await coconut_sender.deliver(coconut.change_notes(steady_id, "same"))
            await queue_drained(azurite)
            before_noop = graph_requests(stack.graph, person.mailbox)
            for _ in range(plan.noop_revisions):
                await coconut_sender.deliver(coconut.change_notes(steady_id, "same"))
                await queue_drained(azurite)
            noop = difference(graph_requests(stack.graph, person.mailbox), before_noop)

    per_change = writes(effective) / len(envelopes)
    per_noop = writes(noop) / plan.noop_revisions
    section.figures += [
        Figure("Graph writes per effective change", per_change, "", "1.0", per_change <= 1.0),
        Figure("Graph writes per no-op revision", per_noop, "", "0", per_noop == 0),
    ]
    section.table_header = ("run", "webhooks", "POST", "PATCH", "DELETE", "GET", "429")
    for name, counts, count in (
        ("effective changes", effective, len(envelopes)),
        ("no-op revisions", noop, plan.noop_revisions),
    ):
        section.table_rows.append(
            (
                name,
                str(count),
                *(str(counts.get(f"ok {m}", 0)) for m in ("POST", "PATCH", "DELETE", "GET")),
                str(counts.get("429", 0)),
            )
        )
    section.notes.append(
        "GETs are the import's delta rounds and lookups that run with every sync of the mailbox; "
        "they are reads, not writes."
    )
    return section
