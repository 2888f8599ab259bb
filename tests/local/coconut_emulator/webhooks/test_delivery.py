"""Delivery with Coconut's retry behaviour against a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from datetime import datetime

import pytest

from local.azurite import free_port
from local.coconut_emulator.webhooks import Backoff, Coconut, WebhookSender
from local.coconut_emulator.webhooks import payloads as p

from .receiver import Receiver, serving

SECRET = "webhook-secret"
FAST = Backoff(first_delay=0.001, multiplier=2.0, max_delay=0.01, give_up_after=10.0)
JANE = p.staff_member("U-42", "jane.doe@bank.example", "Jane", "Doe")


def verifies(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    timestamp = headers["x-coconut-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    offered = [
        part.strip().removeprefix("v1=") for part in headers["x-coconut-signature"].split(",")
    ]
    return any(hmac.compare_digest(expected.hexdigest(), value) for value in offered)


def booking(coconut: Coconut) -> p.Envelope:
    return coconut.book(
        staff=[JANE],
        start=datetime(2026, 12, 1, 14),
        end=datetime(2026, 12, 1, 14, 30),
        service=p.service("S-7", "Opening an account"),
    )


async def test_non_2xx_is_retried_with_the_same_id_and_body_until_accepted() -> None:
    receiver = Receiver(statuses=[503, 401])
    envelope = booking(Coconut())
    clock = itertools.count(1_795_000_000, 60)  # each signing a minute later

    with serving(receiver) as url:
        async with WebhookSender(url, SECRET, backoff=FAST, clock=lambda: next(clock)) as sender:
            delivery = await sender.deliver(envelope)

    assert delivery.delivered
    assert [attempt.status for attempt in delivery.attempts] == [503, 401, 202]
    assert [r.headers["x-coconut-delivery"] for r in receiver.received] == [envelope["id"]] * 3
    assert len({r.body for r in receiver.received}) == 1
    assert all(r.headers["content-type"] == "application/json" for r in receiver.received)
    timestamps = [r.headers["x-coconut-timestamp"] for r in receiver.received]
    assert timestamps == ["1795000000", "1795000060", "1795000120"]
    assert all(verifies(r.headers, r.body) for r in receiver.received)
    assert sender.attempts == delivery.attempts


async def test_connection_errors_are_retried_until_the_sender_gives_up() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/coconut/webhooks"  # nothing listens there
    backoff = Backoff(first_delay=0.001, max_delay=0.001, max_attempts=3)

    async with WebhookSender(url, SECRET, backoff=backoff) as sender:
        delivery = await sender.deliver(booking(Coconut()))

    assert not delivery.delivered
    assert [(a.number, a.status) for a in delivery.attempts] == [(1, None), (2, None), (3, None)]
    assert all(a.error == "ConnectError" for a in delivery.attempts)


async def test_waits_grow_exponentially_up_to_the_cap() -> None:
    receiver = Receiver(statuses=[500] * 10)
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    backoff = Backoff(first_delay=30, multiplier=2, max_delay=100, max_attempts=5)
    with serving(receiver) as url:
        async with WebhookSender(url, SECRET, backoff=backoff, sleep=record_wait) as sender:
            delivery = await sender.deliver(booking(Coconut()))

    assert waits == [30, 60, 100, 100]
    assert [a.status for a in delivery.attempts] == [500] * 5


def test_by_default_coconut_keeps_trying_for_24_hours() -> None:
    assert Backoff().give_up_after == 24 * 3600


async def test_rotation_signs_with_every_secret() -> None:
    receiver = Receiver()

    with serving(receiver) as url:
        async with WebhookSender(url, ["new-secret", SECRET], backoff=FAST) as sender:
            await sender.deliver(booking(Coconut()))

    [received] = receiver.received
    assert received.headers["x-coconut-signature"].count("v1=") == 2
    assert verifies(received.headers, received.body, "new-secret")
    assert verifies(received.headers, received.body, SECRET)


async def test_deliver_twice_sends_the_same_event_twice() -> None:
    receiver = Receiver()
    envelope = booking(Coconut())

    with serving(receiver) as url:
        async with WebhookSender(url, SECRET, backoff=FAST) as sender:
            first, second = await sender.deliver_twice(envelope)

    assert first.delivered
    assert second.delivered
    assert [r.headers["x-coconut-delivery"] for r in receiver.received] == [envelope["id"]] * 2
    assert receiver.received[0].body == receiver.received[1].body


async def test_out_of_order_delivers_newest_first_by_default() -> None:
    receiver = Receiver()
    coconut = Coconut()
    created = booking(coconut)
    appointment_id = created["data"]["id"]
    envelopes = [
        created,
        coconut.reschedule(appointment_id, datetime(2026, 12, 2, 9), datetime(2026, 12, 2, 10)),
        coconut.cancel(appointment_id),
    ]

    with serving(receiver) as url:
        async with WebhookSender(url, SECRET, backoff=FAST) as sender:
            deliveries = await sender.deliver_in_order(envelopes)

    assert [d.delivery_id for d in deliveries] == [e["id"] for e in envelopes]
    sent_order = [r.headers["x-coconut-delivery"] for r in receiver.received]
    assert sent_order == [e["id"] for e in reversed(envelopes)]


async def test_an_order_must_name_every_envelope_once() -> None:
    async with WebhookSender("http://127.0.0.1:9/", SECRET) as sender:
        with pytest.raises(ValueError, match="exactly once"):
            await sender.deliver_in_order([booking(Coconut())], order=[0, 0])


async def test_concurrent_deliveries_all_arrive() -> None:
    receiver = Receiver(statuses=[503])
    coconut = Coconut()
    envelopes = [booking(coconut) for _ in range(8)]

    with serving(receiver) as url:
        async with WebhookSender(url, SECRET, backoff=FAST) as sender:
            deliveries = await sender.deliver_concurrently(envelopes)

    assert all(d.delivered for d in deliveries)
    assert len(receiver.received) == 9  # one of them was refused once and retried
    assert {r.headers["x-coconut-delivery"] for r in receiver.received} == {
        e["id"] for e in envelopes
    }
