"""A disconnect removes exactly what the service made (fakes for Graph, Coconut, storage)."""

from __future__ import annotations

from typing import Any

from sync.coconut.api import UnknownCoconutUser
from sync.export.planning import EventLink
from sync.graph.mailboxes import MailboxUser, WrittenEvent
from sync.imports.busy_time import external_id_for
from sync.ops.disconnect import StaffDisconnect
from sync.storage.staff_items import StaffItemRow
from sync.storage.staff_records import StaffRecord


class FakeMailboxes:
    def __init__(self, tagged: list[str]) -> None:
        self.tagged = tagged
        self.deleted: list[str] = []

    async def find_service_events(self, user_id: str) -> list[WrittenEvent]:
        return [WrittenEvent(event_id, "ck") for event_id in self.tagged]

    async def delete_event(self, user_id: str, event_id: str) -> None:
        self.deleted.append(event_id)

    async def find_user(self, mail: str) -> MailboxUser | None:
        return MailboxUser("user-from-mail", "UTC") if mail == "kim@bank.example" else None


class FakeStaffItems:
    def __init__(self, rows: list[StaffItemRow]) -> None:
        self._rows = rows
        self.saved: dict[str, EventLink] = {}

    async def rows(self, staff_id: str) -> list[StaffItemRow]:
        return self._rows

    async def save_link(self, row: StaffItemRow, link: EventLink, *, done: bool) -> StaffItemRow:
        self.saved[link.item_key] = link
        return row


class FakeCoconut:
    def __init__(self, held: dict[str, Any] | None) -> None:
        self.held = held
        self.deleted: list[str] = []

    async def busy_blocks(self, user_id: str) -> dict[str, Any]:
        if self.held is None:
            raise UnknownCoconutUser(user_id)
        return self.held

    async def delete_busy_block(self, user_id: str, external_id: str) -> None:
        self.deleted.append(external_id)


class FakeSubscriptions:
    def __init__(self) -> None:
        self.removed: list[tuple[str, str]] = []

    async def remove(self, user_id: str, subscription_id: str) -> None:
        self.removed.append((user_id, subscription_id))


def row(key: str, event_id: str | None, generation: int = 0, pending: bool = False) -> StaffItemRow:
    link = EventLink(item_key=key, event_id=event_id, generation=generation, pending_create=pending)
    return StaffItemRow("U-1", link, False, "etag")


async def test_everything_the_service_made_goes_and_nothing_else() -> None:
    ours, lost = external_id_for("event-a"), external_id_for("event-b")
    mailboxes = FakeMailboxes(tagged=["e1", "e-orphan"])
    items = FakeStaffItems(
        [
            row("appointment:1", "e1", generation=2),
            row("appointment:2", "e2"),
            row("appointment:3", None, pending=True),  # created, answer lost
            row("appointment:4", None),  # never had an event
        ]
    )
    coconut = FakeCoconut({ours: {}, lost: {}, "crm-1": {}})
    subscriptions = FakeSubscriptions()
    disconnect = StaffDisconnect(mailboxes, items, coconut, subscriptions)  # type: ignore[arg-type]
    record = StaffRecord("U-1", {"UserId": "user-1", "SubscriptionId": "sub-1"}, "e")

    fields = await disconnect.run("U-1", record)

    assert sorted(mailboxes.deleted) == ["e-orphan", "e1", "e2"]
    assert sorted(coconut.deleted) == sorted([ours, lost])
    assert subscriptions.removed == [("user-1", "sub-1")]
    assert items.saved == {
        "appointment:1": EventLink(item_key="appointment:1", generation=3),
        "appointment:2": EventLink(item_key="appointment:2", generation=1),
        "appointment:3": EventLink(item_key="appointment:3", generation=1),
    }, "links retired: a reconnect creates anew with fresh transaction ids"
    assert fields["Status"] == "Disconnected"
    assert fields["Disconnected"] is True
    assert (fields["RemovedEvents"], fields["RemovedBusyBlocks"]) == (3, 2)
    assert (fields["SubscriptionId"], fields["DeltaLink"]) == ("", "")


async def test_an_unresolved_mailbox_is_found_by_mail_and_a_user_gone_from_coconut_is_fine() -> (
    None
):
    mailboxes = FakeMailboxes(tagged=["e9"])
    disconnect = StaffDisconnect(
        mailboxes,  # type: ignore[arg-type]
        FakeStaffItems([]),  # type: ignore[arg-type]
        FakeCoconut(None),  # type: ignore[arg-type]
        None,
    )
    fields = await disconnect.run("U-1", StaffRecord("U-1", {"Email": "kim@bank.example"}, "e"))
    assert mailboxes.deleted == ["e9"]
    assert fields["RemovedBusyBlocks"] == 0
    nobody = await disconnect.run("U-2", StaffRecord("U-2", {}, "e"))
    assert nobody["RemovedEvents"] == 0
