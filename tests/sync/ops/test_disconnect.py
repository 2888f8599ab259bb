"""A disconnect removes exactly what the service made (over the memory adapters)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sync.export.planning import EventLink
from sync.imports.busy_time import BusyBlock, external_id_for
from sync.memory.calendar import MemoryCalendar
from sync.memory.coconut import MemoryCoconut
from sync.memory.storage import MemoryItemLinks
from sync.ops.disconnect import DISCONNECTED_REASON, StaffDisconnect
from sync.staff_record import Mailbox, Roster, StaffChanges, StaffRecord, SubscriptionState

START = {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"}
END = {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}


class RecordedSubscriptions:
    """`sync.ports.ChangeSubscriptions` that only records removals."""

    def __init__(self) -> None:
        self.removed: list[tuple[str, str]] = []

    async def ensure(
        self,
        staff_id: str,
        user_id: str,
        current: SubscriptionState,
        before_create: Callable[[SubscriptionState], Awaitable[None]] | None = None,
    ) -> SubscriptionState | None:
        raise AssertionError("a disconnect never subscribes")

    async def remove(self, user_id: str, subscription_id: str) -> None:
        self.removed.append((user_id, subscription_id))


def event(subject: str) -> dict[str, object]:
    return {"subject": subject, "start": START, "end": END}


async def link(links: MemoryItemLinks, staff_id: str, saved: EventLink) -> None:
    await links.mark_pending([staff_id], saved.item_key)
    [row] = [r for r in await links.rows(staff_id) if r.item_key == saved.item_key]
    await links.save_link(row, saved, done=True)


async def service_event(calendar: MemoryCalendar, user_id: str, key: str) -> str:
    written = await calendar.create_event(
        user_id, event("Opening an account"), transaction_id=f"tx-{key}", coconut_key=key
    )
    return written.id


def block(graph_id: str) -> BusyBlock:
    return BusyBlock.model_validate(
        {
            "external_id": external_id_for(graph_id),
            "start": "2026-12-02T10:00:00Z",
            "end": "2026-12-02T11:00:00Z",
            "show_as": "busy",
            "all_day": False,
        }
    )


async def test_everything_the_service_made_goes_and_nothing_else() -> None:
    calendar, links, coconut = MemoryCalendar(), MemoryItemLinks(), MemoryCoconut()
    kim, lee = calendar.add_user("kim@bank.example"), calendar.add_user("lee@bank.example")
    first = await service_event(calendar, kim.id, "appointment:1")
    second = await service_event(calendar, kim.id, "appointment:2")
    await service_event(calendar, kim.id, "appointment:3")  # created, its answer lost
    await service_event(calendar, kim.id, "appointment:404")  # no link row at all
    own = calendar.person_create(kim.id, event("Dentist"))
    lees = await service_event(calendar, lee.id, "appointment:1")
    await link(links, "U-1", EventLink(item_key="appointment:1", event_id=first, generation=2))
    await link(links, "U-1", EventLink(item_key="appointment:2", event_id=second))
    await link(links, "U-1", EventLink(item_key="appointment:3", pending_create=True))
    await link(links, "U-1", EventLink(item_key="appointment:4"))  # never had an event
    await link(links, "U-2", EventLink(item_key="appointment:1", event_id=lees))
    coconut.add_user("U-1", "kim@bank.example")
    for graph_id in ("event-a", "event-b"):
        await coconut.put_busy_block("U-1", block(graph_id))
    coconut.blocks["U-1"]["crm-1"] = {"title": "CRM"}
    subscriptions = RecordedSubscriptions()
    disconnect = StaffDisconnect(calendar, links, coconut, subscriptions)
    record = StaffRecord(staff_id="U-1").with_changes(
        StaffChanges(
            mailbox=Mailbox(user_id=kim.id),
            subscription=SubscriptionState(id="sub-1", user_id=kim.id),
        ),
        "etag",
    )

    changes = await disconnect.run("U-1", record)

    assert [e.id for e in calendar.live_events(kim.id)] == [own], "her own events stay"
    assert [e.id for e in calendar.live_events(lee.id)] == [lees], "nobody else is touched"
    assert list(coconut.blocks["U-1"]) == ["crm-1"], "another system's block stays"
    assert subscriptions.removed == [(kim.id, "sub-1")]
    assert {r.item_key: r.link for r in await links.rows("U-1")} == {
        "appointment:1": EventLink(item_key="appointment:1", generation=3),
        "appointment:2": EventLink(item_key="appointment:2", generation=1),
        "appointment:3": EventLink(item_key="appointment:3", generation=1),
        "appointment:4": EventLink(item_key="appointment:4"),
    }, "links retired: a reconnect creates anew with fresh transaction ids"
    assert [r.link.event_id for r in await links.rows("U-2")] == [lees]
    assert changes.connection is not None
    assert changes.connection.disconnected is True
    assert changes.connection.disconnected_at is not None
    assert (changes.connection.removed_events, changes.connection.removed_busy_blocks) == (4, 2)
    assert changes.outcome is not None
    assert (changes.outcome.status, changes.outcome.reason) == (
        "Disconnected",
        DISCONNECTED_REASON,
    )
    assert changes.outcome.event_count == 0
    written = changes.written()
    assert written["cursor"] == {"delta_link": ""}, "a reconnect starts the import afresh"
    assert written["subscription"] == {"id": "", "user_id": ""}


async def test_a_mailbox_not_resolved_yet_is_found_by_mail() -> None:
    calendar, links, coconut = MemoryCalendar(), MemoryItemLinks(), MemoryCoconut()
    kim = calendar.add_user("kim@bank.example")
    orphan = await service_event(calendar, kim.id, "appointment:9")
    disconnect = StaffDisconnect(calendar, links, coconut, None)
    record = StaffRecord(staff_id="U-1").with_changes(
        StaffChanges(roster=Roster(email="KIM@bank.example")), "etag"
    )

    changes = await disconnect.run("U-1", record)

    assert calendar.live_events(kim.id) == []
    assert calendar.mailboxes[kim.id].events[orphan].folder == "deleted"
    assert changes.connection is not None
    assert changes.connection.removed_events == 1
    assert changes.connection.removed_busy_blocks == 0, "gone from Coconut: nothing to remove"


async def test_without_any_mailbox_only_coconut_is_cleared() -> None:
    calendar, coconut = MemoryCalendar(), MemoryCoconut()
    calendar.add_user("kim@bank.example")
    coconut.add_user("U-2", "nobody@bank.example")
    await coconut.put_busy_block("U-2", block("event-z"))
    disconnect = StaffDisconnect(calendar, MemoryItemLinks(), coconut, None)

    changes = await disconnect.run("U-2", StaffRecord(staff_id="U-2"))

    assert calendar.requests == 0, "no e-mail known: Graph is not asked"
    assert coconut.blocks["U-2"] == {}
    assert changes.connection is not None
    assert (changes.connection.removed_events, changes.connection.removed_busy_blocks) == (0, 1)
