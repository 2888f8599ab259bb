"""The appointment and absence listings, driven over HTTP the way the sync service drives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from local.coconut_emulator import CoconutEmulator, FaultPlan
from local.coconut_emulator.webhooks import payloads as p

APPOINTMENTS = "/users/{user_id}/appointments"
ACCOUNT = p.service("S-7", "Opening an account")
SINCE = "2026-12-01T00:00:00Z"
MIDNIGHT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def staff(emulator: CoconutEmulator) -> tuple[str, str]:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    emulator.add_user("U-43", "omar.ali@bank.example", "Omar", "Ali")
    return "U-42", "U-43"


def listing(
    api: httpx.Client,
    user_id: str,
    kind: str = "appointments",
    end_after: str | None = SINCE,
    number: int = 1,
    size: int = 100,
) -> httpx.Response:
    params: dict[str, Any] = {"page[number]": number, "page[size]": size}
    if end_after is not None:
        params["filter[end_after]"] = end_after
    return api.get(f"/users/{user_id}/{kind}", params=params)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def book(
    emulator: CoconutEmulator,
    start: datetime,
    staff: tuple[str, ...] = ("U-42",),
    minutes: int = 30,
) -> str:
    envelope = emulator.book(
        staff=staff, start=start, end=start + timedelta(minutes=minutes), service=ACCOUNT
    )
    return envelope["data"]["id"]


def walk(api: httpx.Client, user_id: str, size: int, between: Any = None) -> list[str]:
    """Every page of Jane's appointments, in order; `between(n)` runs after page n."""
    first = listing(api, user_id, size=size)
    seen = ids(first)
    for number in range(2, first.json()["meta"]["pagination"]["total_pages"] + 1):
        if between is not None:
            between(number - 1)
        seen += ids(listing(api, user_id, number=number, size=size))
    return seen


# --- what is listed -------------------------------------------------------------------------


def test_items_ending_after_the_instant_are_listed_by_start(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    late = book(emulator, MIDNIGHT + timedelta(hours=15))
    early = book(emulator, MIDNIGHT + timedelta(hours=9))
    book(emulator, MIDNIGHT - timedelta(minutes=30))  # ends exactly at the instant: not after
    spanning = book(emulator, MIDNIGHT - timedelta(minutes=30), minutes=31)

    assert ids(listing(api, "U-42")) == [spanning, early, late]


def test_the_instant_is_compared_as_an_instant_whatever_the_offset(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    # 18:00 in Toronto is 23:00 UTC.
    toronto = book(emulator, datetime(2026, 12, 1, 17, 30), minutes=30)

    assert ids(listing(api, "U-42", end_after="2026-12-01T22:59:59Z")) == [toronto]
    assert ids(listing(api, "U-42", end_after="2026-12-01T23:00:00Z")) == []
    assert ids(listing(api, "U-42", end_after="2026-12-01T22:59:59.5Z")) == [toronto]


def test_booked_and_cancelled_are_listed_and_deleted_are_not(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    booked = book(emulator, MIDNIGHT + timedelta(hours=9))
    cancelled = book(emulator, MIDNIGHT + timedelta(hours=10))
    deleted = book(emulator, MIDNIGHT + timedelta(hours=11))
    emulator.cancel(cancelled)
    emulator.delete_appointment(deleted)

    page = listing(api, "U-42").json()

    assert [(item["id"], item["attributes"]["status"]) for item in page["data"]] == [
        (booked, "booked"),
        (cancelled, "cancelled"),
    ]
    assert page["data"][1]["attributes"]["revision"] == 2


def test_an_item_is_exactly_the_webhooks_resource(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    envelope = emulator.book(
        staff=["U-42"],
        start=datetime(2026, 12, 1, 14),
        end=datetime(2026, 12, 1, 14, 30),
        service=ACCOUNT,
        location=p.location("L-3", "Downtown Branch", "100 King St W"),
        attendees=[p.attendee("C-9", "Sam", "Lee", cell_phone="+1 416 555 0100")],
        notes="Customer prefers French.",
    )

    (item,) = listing(api, "U-42").json()["data"]

    assert item == envelope["data"]
    assert item["attributes"]["start"] == "2026-12-01T14:00:00-05:00"
    assert item["attributes"]["staff"] == [
        p.staff_member("U-42", "jane.doe@bank.example", "Jane", "Doe")
    ]


def test_a_multi_staff_appointment_is_listed_under_each(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    team = book(emulator, MIDNIGHT + timedelta(hours=9), staff=staff)

    assert ids(listing(api, "U-42")) == [team]
    assert ids(listing(api, "U-43")) == [team]


def test_a_reassigned_appointment_is_listed_under_the_new_staff_only(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    appointment = book(emulator, MIDNIGHT + timedelta(hours=9))

    emulator.reassign(appointment, ["U-43"])

    assert ids(listing(api, "U-42")) == []
    assert ids(listing(api, "U-43")) == [appointment]


def test_absences_are_listed_by_start_and_deleted_ones_are_not(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    vacation = emulator.record_absence(
        staff="U-42", start=datetime(2026, 12, 20), end=datetime(2027, 1, 4), all_day=True
    )["data"]["id"]
    training = emulator.record_absence(
        staff="U-42", start=datetime(2026, 12, 2, 9), end=datetime(2026, 12, 2, 17)
    )["data"]["id"]
    past = emulator.record_absence(
        staff="U-42", start=datetime(2026, 11, 2, 9), end=datetime(2026, 11, 2, 17)
    )["data"]["id"]
    gone = emulator.record_absence(
        staff="U-42", start=datetime(2026, 12, 3, 9), end=datetime(2026, 12, 3, 17)
    )["data"]["id"]
    emulator.record_absence(staff="U-43", start=datetime(2026, 12, 4), end=datetime(2026, 12, 5))
    emulator.delete_absence(gone)

    page = listing(api, "U-42", "unavailabilities").json()

    assert [item["id"] for item in page["data"]] == [training, vacation]
    since_november = listing(api, "U-42", "unavailabilities", end_after="2026-11-01T00:00:00Z")
    assert ids(since_november) == [past, training, vacation]
    assert page["data"][1]["type"] == "unavailabilities"
    assert page["data"][1]["attributes"]["all_day"] is True


# --- paging ---------------------------------------------------------------------------------


def test_listings_page_like_the_roster(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    booked = [book(emulator, MIDNIGHT + timedelta(hours=n)) for n in range(230)]

    pages = [listing(api, "U-42", number=n).json() for n in (1, 2, 3, 4)]

    assert [page["meta"]["pagination"] for page in pages] == [
        {"current_page": n, "total_pages": 3} for n in (1, 2, 3, 4)
    ]
    assert [item["id"] for page in pages for item in page["data"]] == booked
    assert pages[3]["data"] == []


def test_without_a_page_size_a_page_holds_25(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    for n in range(30):
        book(emulator, MIDNIGHT + timedelta(hours=n))

    page = api.get("/users/U-42/appointments", params={"filter[end_after]": SINCE}).json()

    assert len(page["data"]) == 25
    assert page["meta"]["pagination"] == {"current_page": 1, "total_pages": 2}


# --- refusals and faults --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["appointments", "unavailabilities"])
@pytest.mark.parametrize(
    "end_after",
    [
        None,
        "",
        "2026-12-01T00:00:00+00:00",
        "2026-12-01T00:00:00z",
        "2026-12-01",
        "2026-12-01T00:00:00",
        "2026-02-30T00:00:00Z",
    ],
)
def test_a_missing_or_non_utc_filter_is_422_naming_the_parameter(
    api: httpx.Client, staff: tuple[str, str], kind: str, end_after: str | None
) -> None:
    response = listing(api, "U-42", kind, end_after=end_after)

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["source"] == {"parameter": "filter[end_after]"}


@pytest.mark.parametrize("kind", ["appointments", "unavailabilities"])
def test_an_unknown_user_is_404(api: httpx.Client, staff: tuple[str, str], kind: str) -> None:
    assert listing(api, "U-9", kind).status_code == 404
    assert listing(api, "U-9", kind, end_after=None).status_code == 404


def test_a_user_with_calendar_sync_off_is_still_listed(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    appointment = book(emulator, MIDNIGHT + timedelta(hours=9))
    emulator.set_calendar_sync("U-42", False)

    assert ids(listing(api, "U-42")) == [appointment]


def test_injected_faults_apply_to_listings(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    emulator.configure_faults(FaultPlan(scripted=(429, 503), retry_after_seconds=4))

    throttled = listing(api, "U-42")
    failed = listing(api, "U-42", "unavailabilities")
    answered = listing(api, "U-42")

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "4")
    assert failed.status_code == 503
    assert answered.status_code == 200
    assert emulator.requests("GET", APPOINTMENTS, 429) == 1
    assert emulator.requests("GET", "/users/{user_id}/unavailabilities", 503) == 1
    assert emulator.requests("GET", APPOINTMENTS, 200) == 1


def test_listings_need_the_api_key(emulator: CoconutEmulator, staff: tuple[str, str]) -> None:
    response = httpx.get(
        f"{emulator.base_url}/users/U-42/appointments",
        params={"filter[end_after]": SINCE},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 401


# --- the listing race -----------------------------------------------------------------------


def test_without_the_race_a_walk_is_consistent_while_the_record_changes(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    booked = [book(emulator, MIDNIGHT + timedelta(hours=n)) for n in range(6)]

    def change(page: int) -> None:
        if page == 1:
            move_to_the_end(emulator, booked[0])
            emulator.delete_appointment(booked[1])

    assert walk(api, "U-42", size=2, between=change) == booked
    # The record did change: the next walk shows it.
    assert walk(api, "U-42", size=2) == [*booked[2:], booked[0]]


def move_to_the_end(emulator: CoconutEmulator, appointment_id: str) -> None:
    later = MIDNIGHT + timedelta(days=2)
    emulator.update_appointment(appointment_id, start=later, end=later + timedelta(minutes=30))


def test_with_the_race_an_item_moved_later_between_pages_shows_twice_and_another_is_missed(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    booked = [book(emulator, MIDNIGHT + timedelta(hours=n)) for n in range(4)]
    emulator.configure_faults(FaultPlan(listing_race=True))

    def reschedule_the_first(page: int) -> None:
        if page == 1:
            move_to_the_end(emulator, booked[0])

    # Page 1 is [0, 1]; then 0 moves last, [1, 2, 3, 0], and page 2 is [3, 0]: 0 shows twice,
    # and 2, which did not change, is never listed.
    seen = walk(api, "U-42", size=2, between=reschedule_the_first)

    assert seen == [booked[0], booked[1], booked[3], booked[0]]


def test_with_the_race_a_deletion_between_pages_makes_another_item_missed(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    booked = [book(emulator, MIDNIGHT + timedelta(hours=n)) for n in range(4)]
    emulator.configure_faults(FaultPlan(listing_race=True))

    # Page 1 [0, 1]; then 0 is deleted: [1, 2, 3]; page 2 is [3]: 2 was never listed.
    def delete_the_first(page: int) -> None:
        if page == 1:
            emulator.delete_appointment(booked[0])

    seen = walk(api, "U-42", size=2, between=delete_the_first)

    assert seen == [booked[0], booked[1], booked[3]]


def test_a_change_queued_between_pages_runs_inside_a_clients_walk(
    emulator: CoconutEmulator, api: httpx.Client, staff: tuple[str, str]
) -> None:
    booked = [book(emulator, MIDNIGHT + timedelta(hours=n)) for n in range(4)]
    emulator.configure_faults(FaultPlan(listing_race=True))
    emulator.between_pages(lambda: emulator.delete_appointment(booked[0]))

    seen = walk(api, "U-42", size=2)

    assert seen == [booked[0], booked[1], booked[3]]
    assert [item["id"] for item in emulator.appointments("U-42")] == booked[1:]
