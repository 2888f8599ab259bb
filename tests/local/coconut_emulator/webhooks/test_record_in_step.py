"""The webhooks a test sends and the record the emulator's listings serve stay in step: the sender
records each change before delivering it, and a model bound to the record writes it directly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.coconut_emulator import BackgroundServer, CoconutEmulator
from local.coconut_emulator.control_client import ControlClient
from local.coconut_emulator.webhooks import Backoff, Coconut, WebhookSender
from local.coconut_emulator.webhooks import payloads as p

from .receiver import Receiver, serving

SECRET = "webhook-secret"
FAST = Backoff(first_delay=0.001, max_delay=0.01, max_attempts=3)
JANE = p.staff_member("U-42", "jane.doe@bank.example", "Jane", "Doe")
OMAR = p.staff_member("U-43", "omar.ali@bank.example", "Omar", "Ali")
ACCOUNT = p.service("S-7", "Opening an account")


@pytest.fixture
def coconut_api(emulator: CoconutEmulator) -> CoconutEmulator:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    emulator.add_user("U-43", "omar.ali@bank.example", "Omar", "Ali")
    return emulator


def listed(api: httpx.Client, user_id: str, kind: str = "appointments") -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"filter[end_after]": "2026-01-01T00:00:00Z", "page[size]": 100}
    response = api.get(f"/users/{user_id}/{kind}", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]
    return items


def booking(coconut: Coconut, *staff: p.StaffRef) -> p.Envelope:
    return coconut.book(
        staff=list(staff) or [JANE],
        start=datetime(2026, 12, 1, 14),
        end=datetime(2026, 12, 1, 14, 30),
        service=ACCOUNT,
    )


# --- the sender records, then delivers ------------------------------------------------------


@pytest.fixture
def receiver_seeing(coconut_api: CoconutEmulator) -> Iterator[tuple[str, list[list[str]]]]:
    """A receiver that notes, for each delivery, which ids Jane's listing held on arrival."""
    seen: list[list[str]] = []

    async def webhook(request: Request) -> Response:
        await request.body()
        seen.append([item["id"] for item in coconut_api.appointments("U-42")])
        return JSONResponse({"status": "accepted"}, status_code=202)

    server = BackgroundServer(Starlette(routes=[Route("/hook", webhook, methods=["POST"])]))
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/hook", seen
    finally:
        server.stop()


async def test_the_change_is_in_the_record_before_its_webhook_arrives(
    coconut_api: CoconutEmulator, receiver_seeing: tuple[str, list[list[str]]]
) -> None:
    url, seen = receiver_seeing
    created = booking(Coconut())

    async with WebhookSender(url, SECRET, backoff=FAST, record=coconut_api.record) as sender:
        await sender.deliver(created)

    assert seen == [[created["data"]["id"]]]


async def test_an_undelivered_change_is_still_coconuts_truth(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    created = booking(Coconut())

    with serving(Receiver(statuses=[503] * 3)) as url:
        async with WebhookSender(url, SECRET, backoff=FAST, record=coconut_api.record) as sender:
            delivery = await sender.deliver(created)

    assert not delivery.delivered
    assert listed(api, "U-42") == [created["data"]]


async def test_out_of_order_and_repeated_deliveries_leave_the_newest(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    coconut = Coconut()
    created = booking(coconut)
    appointment_id = created["data"]["id"]
    moved = coconut.reschedule(appointment_id, datetime(2026, 12, 2, 9), datetime(2026, 12, 2, 10))

    with serving(Receiver()) as url:
        async with WebhookSender(url, SECRET, backoff=FAST, record=coconut_api.record) as sender:
            await sender.deliver_in_order([created, moved])  # newest first
            await sender.deliver_twice(created)

    assert listed(api, "U-42") == [moved["data"]]


async def test_a_delivered_reassignment_lists_under_the_new_staff_only(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    coconut = Coconut()
    created = booking(coconut)
    reassigned = coconut.reassign(created["data"]["id"], [OMAR])

    with serving(Receiver()) as url:
        async with WebhookSender(url, SECRET, backoff=FAST, record=coconut_api.record) as sender:
            await sender.deliver(created)
            await sender.deliver(reassigned)

    assert listed(api, "U-42") == []
    assert listed(api, "U-43") == [reassigned["data"]]


async def test_a_delivered_multi_staff_booking_lists_under_each(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    team = booking(Coconut(), JANE, OMAR)

    with serving(Receiver()) as url:
        async with WebhookSender(url, SECRET, backoff=FAST, record=coconut_api.record) as sender:
            await sender.deliver(team)

    assert listed(api, "U-42") == listed(api, "U-43") == [team["data"]]


async def test_a_delivered_deletion_is_final(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    coconut = Coconut()
    created = booking(coconut)
    absence = coconut.record_absence(
        staff=JANE, start=datetime(2026, 12, 20), end=datetime(2027, 1, 4)
    )
    deleted = coconut.delete(created["data"]["id"])
    absence_deleted = coconut.delete_absence(absence["data"]["id"])

    with serving(Receiver()) as url:
        async with WebhookSender(url, SECRET, backoff=FAST, record=coconut_api.record) as sender:
            await sender.deliver_in_order(
                [created, absence, deleted, absence_deleted], [0, 1, 2, 3]
            )
            await sender.deliver(created)  # a late redelivery of the creation
            await sender.deliver(absence)

    assert listed(api, "U-42") == []
    assert listed(api, "U-42", "unavailabilities") == []


async def test_a_remote_emulator_is_kept_in_step_through_its_control_api(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    created = booking(Coconut())

    with (
        ControlClient(f"http://127.0.0.1:{coconut_api.port}") as remote,
        serving(Receiver()) as url,
    ):
        async with WebhookSender(url, SECRET, backoff=FAST, record=remote) as sender:
            await sender.deliver(created)

    assert listed(api, "U-42") == [created["data"]]


async def test_without_a_record_the_sender_only_delivers(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    with serving(Receiver()) as url:
        async with WebhookSender(url, SECRET, backoff=FAST) as sender:
            await sender.deliver(booking(Coconut()))

    assert listed(api, "U-42") == []


# --- a model bound to the record -------------------------------------------------------------


def test_a_bound_models_changes_are_listed_at_once_without_any_delivery(
    coconut_api: CoconutEmulator, api: httpx.Client
) -> None:
    coconut = Coconut(record=coconut_api.record)

    created = booking(coconut)
    moved = coconut.reschedule(
        created["data"]["id"], datetime(2026, 12, 3, 9), datetime(2026, 12, 3, 10)
    )

    assert listed(api, "U-42") == [moved["data"]]


def test_a_bound_model_follows_changes_made_through_the_emulator(
    coconut_api: CoconutEmulator,
) -> None:
    coconut = Coconut(record=coconut_api.record)
    appointment_id = booking(coconut)["data"]["id"]

    coconut_api.cancel(appointment_id)  # revision 2, no webhook
    notes = coconut.change_notes(appointment_id, "Moved upstairs.")

    assert notes["data"]["attributes"]["revision"] == 3
    assert notes["data"]["attributes"]["status"] == "cancelled"  # type: ignore[typeddict-item]


def test_models_sharing_a_record_never_hand_out_the_same_id(
    coconut_api: CoconutEmulator,
) -> None:
    first, second = Coconut(record=coconut_api.record), Coconut(record=coconut_api.record)

    ids = {booking(first)["data"]["id"], booking(second)["data"]["id"]}

    assert ids == {"A-1001", "A-1002"}
