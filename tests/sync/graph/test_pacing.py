"""The pacer keeps a mailbox within Graph's requests per sliding window, counted as Graph counts
them: from the answer (never earlier than Graph), requests on their way included, refusals not."""

from __future__ import annotations

import pytest

from sync.graph.pacing import MailboxPacer, MailboxRate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def send(pacer: MailboxPacer, mailbox: str = "user-1", *, counted: bool = True) -> None:
    assert pacer.room_in(mailbox) == 0.0, "sent only when there is room"
    pacer.sending(mailbox)
    pacer.answered(mailbox, counted=counted)


def test_a_full_window_has_room_again_when_its_oldest_answer_leaves_it(clock: Clock) -> None:
    pacer = MailboxPacer(MailboxRate(requests=3, window_seconds=10), clock)
    for _ in range(3):
        send(pacer)
        clock.now += 1  # answers at 100, 101, 102

    assert pacer.room_in("user-1") == pytest.approx(7.0)  # at 110
    clock.now = 110.0
    assert pacer.room_in("user-1") == 0.0


def test_requests_on_their_way_count_before_their_answers(clock: Clock) -> None:
    pacer = MailboxPacer(MailboxRate(requests=2, window_seconds=10), clock)
    pacer.sending("user-1")
    pacer.sending("user-1")

    assert pacer.room_in("user-1") > 0, "two in flight fill a window of two"


def test_a_refused_request_does_not_use_the_window(clock: Clock) -> None:
    pacer = MailboxPacer(MailboxRate(requests=1, window_seconds=10), clock)
    send(pacer, counted=False)

    assert pacer.room_in("user-1") == 0.0


def test_mailboxes_have_windows_of_their_own(clock: Clock) -> None:
    pacer = MailboxPacer(MailboxRate(requests=1, window_seconds=10), clock)
    send(pacer, "user-1")

    assert pacer.room_in("user-1") > 0
    assert pacer.room_in("user-2") == 0.0


def test_an_idle_mailbox_is_forgotten(clock: Clock) -> None:
    pacer = MailboxPacer(MailboxRate(requests=5, window_seconds=10), clock)
    send(pacer)
    clock.now += 11
    send(pacer, "user-2")  # any answer tidies its own mailbox only
    pacer.sending("user-1")
    pacer.answered("user-1", counted=False)

    assert pacer.room_in("user-1") == 0.0
    assert "user-1" not in pacer._windows
