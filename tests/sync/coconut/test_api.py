"""The Coconut API client against the strict Coconut emulator (contracts/coconut-api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from local.azurite import free_port
from local.coconut_emulator import CoconutEmulator, FaultPlan
from local.coconut_emulator.webhooks import payloads
from sync.coconut.api import (
    CoconutApi,
    CoconutAuthFailed,
    CoconutRejected,
    CoconutUnavailable,
    CoconutUser,
    UnexpectedCoconutAnswer,
    UnknownCoconutUser,
)
from sync.coconut.webhook_models import Appointment, Unavailability
from sync.imports.busy_time import BusyBlock, external_id_for

API_KEY = "test-key"
JANE = "U-42"
USERS = "/users"
EVENTS = "/users/{user_id}/external-events"
EVENT = "/users/{user_id}/external-events/{external_id}"
APPOINTMENTS = "/users/{user_id}/appointments"
UNAVAILABILITIES = "/users/{user_id}/unavailabilities"
START = datetime(2026, 12, 2, 15, tzinfo=UTC)
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
ACCOUNT = payloads.service("S-7", "Opening an account")


class Sleeps(list[float]):
    """Stands in for asyncio.sleep: records each back-off instead of waiting it out."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def busy_block(external_id: str = "ex-1", start: datetime = START, hours: int = 1) -> BusyBlock:
    return BusyBlock(
        external_id=external_id,
        start=start,
        end=start + timedelta(hours=hours),
        all_day=False,
        show_as="busy",
    )


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[CoconutEmulator]:
    with CoconutEmulator(api_key=API_KEY) as emulator:
        yield emulator


@pytest.fixture
def coconut(running_emulator: CoconutEmulator) -> CoconutEmulator:
    """One server per module, emptied before each test, with Jane on the roster."""
    running_emulator.reset()
    running_emulator.add_user(JANE, "jane.doe@bank.example", "Jane", "Doe")
    return running_emulator


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def api(coconut: CoconutEmulator, sleeps: Sleeps) -> AsyncIterator[CoconutApi]:
    async with CoconutApi(coconut.base_url, API_KEY, sleep=sleeps) as client:
        yield client


# --- roster ---------------------------------------------------------------------------------------


async def test_the_roster_follows_every_page_of_100(
    coconut: CoconutEmulator, api: CoconutApi
) -> None:
    coconut.reset()
    for n in range(250):
        coconut.add_user(f"U-{n:03d}", f"staff{n}@bank.example", "Staff", str(n), n % 3 != 0)

    roster = await api.roster()

    assert roster == [
        CoconutUser(id=f"U-{n:03d}", email=f"staff{n}@bank.example", calendar_sync=n % 3 != 0)
        for n in range(250)
    ]
    # page[size]=100 was sent: the emulator's default of 25 would have taken 10 pages.
    assert coconut.requests("GET", USERS, 200) == 3


async def test_an_empty_roster_is_one_request_and_no_users(
    coconut: CoconutEmulator, api: CoconutApi
) -> None:
    coconut.reset()

    assert await api.roster() == []
    assert coconut.requests("GET", USERS) == 1


async def test_a_roster_user_keeps_neither_names_nor_shows_the_email(api: CoconutApi) -> None:
    (jane,) = await api.roster()

    assert jane == CoconutUser(id=JANE, email="jane.doe@bank.example", calendar_sync=True)
    assert set(CoconutUser.model_fields) == {"id", "email", "calendar_sync"}
    assert "jane.doe" not in repr(jane)


async def test_a_roster_that_breaks_the_contract_is_reported_without_its_content() -> None:
    def roster_page(request: httpx.Request) -> httpx.Response:
        user = {"type": "users", "id": "U-1", "attributes": {"email": "jane.doe@bank.example"}}
        meta = {"pagination": {"current_page": 1, "total_pages": 1}}
        return httpx.Response(200, json={"data": [user], "meta": meta})

    transport = httpx.MockTransport(roster_page)
    async with httpx.AsyncClient(transport=transport) as client:
        api = CoconutApi("https://coconut.example/api/v2", API_KEY, client=client)

        with pytest.raises(UnexpectedCoconutAnswer) as raised:
            await api.roster()

    assert raised.value.fields == ("attributes/calendar_sync",)
    assert "jane.doe" not in str(raised.value)


# --- busy blocks ----------------------------------------------------------------------------------


async def test_a_put_creates_then_replaces(coconut: CoconutEmulator, api: CoconutApi) -> None:
    first, moved = busy_block(), busy_block(start=START + timedelta(hours=3))

    created = await api.put_busy_block(JANE, first)
    replaced = await api.put_busy_block(JANE, moved)

    assert (created, replaced) == (True, False)
    assert coconut.external_events(JANE) == {"ex-1": moved.coconut_data()}
    assert coconut.requests("PUT", EVENT, 201) == 1
    assert coconut.requests("PUT", EVENT, 200) == 1


async def test_a_block_is_listed_back_as_it_was_put(api: CoconutApi) -> None:
    block = busy_block(external_id_for("AAMkAD/occ+1="))

    await api.put_busy_block(JANE, block)

    assert await api.busy_blocks(JANE) == {block.external_id: block.coconut_data()}


async def test_the_list_follows_every_page(coconut: CoconutEmulator, api: CoconutApi) -> None:
    seeded = [busy_block(f"ex-{n:03d}") for n in range(230)]
    for block in seeded:
        coconut.put_external_event(JANE, block.coconut_data())

    held = await api.busy_blocks(JANE)

    assert held == {block.external_id: block.coconut_data() for block in seeded}
    assert coconut.requests("GET", EVENTS, 200) == 3


async def test_deleting_twice_is_done_both_times(coconut: CoconutEmulator, api: CoconutApi) -> None:
    await api.put_busy_block(JANE, busy_block())

    await api.delete_busy_block(JANE, "ex-1")
    await api.delete_busy_block(JANE, "ex-1")

    assert coconut.external_events(JANE) == {}
    assert coconut.requests("DELETE", EVENT, 204) == 1
    assert coconut.requests("DELETE", EVENT, 404) == 1


async def test_ids_that_need_escaping_round_trip(coconut: CoconutEmulator, api: CoconutApi) -> None:
    user_id = "U/7 ü?"
    external_id = "AAMk/a+b=c %2F ü?#&"
    coconut.add_user(user_id, "someone@bank.example", "Some", "One")
    block = busy_block(external_id)

    assert await api.put_busy_block(user_id, block) is True
    assert coconut.external_events(user_id) == {external_id: block.coconut_data()}
    assert set(await api.busy_blocks(user_id)) == {external_id}

    await api.delete_busy_block(user_id, external_id)
    assert coconut.external_events(user_id) == {}


# --- errors ---------------------------------------------------------------------------------------


async def test_a_throttled_request_waits_as_asked_and_succeeds(
    coconut: CoconutEmulator, api: CoconutApi, sleeps: Sleeps
) -> None:
    coconut.configure_faults(FaultPlan(scripted=(429,), retry_after_seconds=2))

    assert await api.put_busy_block(JANE, busy_block()) is True

    assert sleeps == [2.0]
    assert coconut.requests("PUT", EVENT, 429) == 1
    assert coconut.requests("PUT", EVENT, 201) == 1
    assert set(coconut.external_events(JANE)) == {"ex-1"}


async def test_a_long_retry_after_is_capped_at_max_wait(
    coconut: CoconutEmulator, sleeps: Sleeps
) -> None:
    coconut.configure_faults(FaultPlan(scripted=(429, 429), retry_after_seconds=120))

    async with CoconutApi(coconut.base_url, API_KEY, max_wait=5.0, sleep=sleeps) as api:
        held = await api.busy_blocks(JANE)

    assert held == {}
    assert sleeps == [5.0, 5.0]


async def test_server_errors_are_retried_with_growing_jittered_waits(
    coconut: CoconutEmulator, api: CoconutApi, sleeps: Sleeps
) -> None:
    coconut.configure_faults(FaultPlan(scripted=(500, 503, 502)))

    assert [user.id for user in await api.roster()] == [JANE]

    assert coconut.requests("GET", USERS) == 4
    assert len(sleeps) == 3
    # Full jitter: each wait is drawn from 0 up to 0.5 s, then 1 s, then 2 s.
    assert all(0 <= wait <= 0.5 * 2**n for n, wait in enumerate(sleeps))


async def test_server_errors_past_max_attempts_give_up(
    coconut: CoconutEmulator, sleeps: Sleeps
) -> None:
    coconut.configure_faults(FaultPlan(scripted=(503,) * 6))

    async with CoconutApi(
        coconut.base_url, API_KEY, max_attempts=5, max_wait=3.0, sleep=sleeps
    ) as api:
        with pytest.raises(CoconutUnavailable) as raised:
            await api.put_busy_block(JANE, busy_block())

    assert raised.value.status == 503
    assert coconut.requests("PUT", EVENT, 503) == 5
    assert coconut.external_events(JANE) == {}
    assert len(sleeps) == 4
    assert all(0 <= wait <= 3.0 for wait in sleeps)


async def test_an_unreachable_coconut_gives_up_after_max_attempts(sleeps: Sleeps) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/api/v2"

    async with CoconutApi(nobody, API_KEY, max_attempts=3, sleep=sleeps) as api:
        with pytest.raises(CoconutUnavailable) as raised:
            await api.roster()

    assert raised.value.status is None
    assert len(sleeps) == 2


@pytest.mark.parametrize(("api_key", "status"), [("not a key", 401), ("wrong-key", 403)])
async def test_a_bad_key_fails_at_once(
    coconut: CoconutEmulator, sleeps: Sleeps, api_key: str, status: int
) -> None:
    async with CoconutApi(coconut.base_url, api_key, sleep=sleeps) as api:
        with pytest.raises(CoconutAuthFailed) as raised:
            await api.roster()

    assert raised.value.status == status
    assert coconut.requests("GET", USERS, status) == 1
    assert sleeps == []


async def test_an_unknown_user_is_reported_by_id(coconut: CoconutEmulator, api: CoconutApi) -> None:
    with pytest.raises(UnknownCoconutUser) as put:
        await api.put_busy_block("U-gone", busy_block())
    with pytest.raises(UnknownCoconutUser) as listed:
        await api.busy_blocks("U-gone")

    assert (put.value.user_id, listed.value.user_id) == ("U-gone", "U-gone")
    assert put.value.status == 404
    assert "U-gone" in str(put.value)
    assert coconut.requests(status=404) == 2


async def test_deleting_for_an_unknown_user_is_done(
    coconut: CoconutEmulator, api: CoconutApi
) -> None:
    await api.delete_busy_block("U-gone", "ex-1")

    assert coconut.requests("DELETE", EVENT, 404) == 1


async def test_an_invalid_body_is_rejected_with_the_fields_at_fault(
    coconut: CoconutEmulator, api: CoconutApi
) -> None:
    # Only a block that skipped validation can be invalid: one that lasts no time.
    invalid: Any = BusyBlock.model_construct(
        external_id="ex-1", start=START, end=START, all_day=False, show_as="busy"
    )

    with pytest.raises(CoconutRejected) as raised:
        await api.put_busy_block(JANE, invalid)

    assert raised.value.status == 422
    assert raised.value.fields == ("/data/attributes/end",)
    assert coconut.requests("PUT", EVENT, 422) == 1
    assert coconut.external_events(JANE) == {}


def test_a_client_without_a_key_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="key"):
        CoconutApi("http://127.0.0.1:1/api/v2", "")


# --- appointments and absences (Coconut's own record) ---------------------------------------------


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=UTC)


def book(coconut: CoconutEmulator, start: datetime, staff: tuple[str, ...] = (JANE,)) -> str:
    envelope = coconut.book(
        staff=staff, start=start, end=start + timedelta(minutes=30), service=ACCOUNT
    )
    return envelope["data"]["id"]


async def test_appointments_follow_every_page_and_read_as_webhook_resources(
    coconut: CoconutEmulator, api: CoconutApi
) -> None:
    coconut.add_user("U-43", "omar.ali@bank.example", "Omar", "Ali")
    ids = [book(coconut, SINCE + timedelta(hours=n)) for n in range(230)]
    coconut.cancel(ids[5])
    coconut.delete_appointment(ids[6])
    book(coconut, START, staff=("U-43",))
    book(coconut, SINCE - timedelta(days=1))  # ended before the filter

    listed = await api.appointments(JANE, end_after=SINCE)

    assert [item.id for item in listed] == [i for i in ids if i != ids[6]]
    assert all(isinstance(item, Appointment) for item in listed)
    assert listed[5].status == "cancelled"
    assert listed[5].revision == 2
    assert listed[0].start == SINCE
    assert listed[0].service.name == "Opening an account"
    assert [staff.id for staff in listed[0].staff] == [JANE]
    assert coconut.requests("GET", APPOINTMENTS, 200) == 3


async def test_unavailabilities_are_read_as_webhook_resources(
    coconut: CoconutEmulator, api: CoconutApi
) -> None:
    coconut.record_absence(staff=JANE, start=at(20, 5), end=at(24, 5), title="Vacation")
    coconut.record_absence(staff=JANE, start=at(1, 9), end=at(1, 17), title="Training")

    listed = await api.unavailabilities(JANE, end_after=SINCE)

    assert [(item.title, item.start) for item in listed] == [
        ("Training", at(1, 9)),
        ("Vacation", at(20, 5)),
    ]
    assert all(isinstance(item, Unavailability) for item in listed)
    assert listed[0].staff.id == JANE
    assert coconut.requests("GET", UNAVAILABILITIES, 200) == 1


def listing_transport(
    pages: list[list[dict[str, Any]]], sent: list[httpx.Request]
) -> httpx.MockTransport:
    """Answers page N of any listing with `pages[N - 1]`, recording every request."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        number = int(request.url.params["page[number]"])
        meta = {"pagination": {"current_page": number, "total_pages": len(pages)}}
        return httpx.Response(200, json={"data": pages[number - 1], "meta": meta})

    return httpx.MockTransport(answer)


def appointment_resource(
    appointment_id: str, revision: int = 1, start: datetime = START
) -> dict[str, Any]:
    resource = payloads.appointment(
        appointment_id,
        revision=revision,
        start=start,
        end=start + timedelta(hours=1),
        service=ACCOUNT,
        staff=[payloads.staff_member(JANE, "jane.doe@bank.example", "Jane", "Doe")],
        attendees=[payloads.attendee("C-9", "Sam", "Lee", email="sam.lee@example.com")],
    )
    return dict(resource)


async def mock_api(
    pages: list[list[dict[str, Any]]],
    call: Callable[[CoconutApi], Any],
) -> tuple[Any, list[httpx.Request]]:
    sent: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=listing_transport(pages, sent)) as client:
        api = CoconutApi("https://coconut.example/api/v2", API_KEY, client=client)
        return await call(api), sent


async def test_a_listing_request_follows_the_contract_to_the_letter() -> None:
    toronto = timezone(timedelta(hours=-5))
    since = datetime(2026, 12, 1, 14, 0, 7, 999_999, tzinfo=toronto)

    listed, sent = await mock_api(
        [[appointment_resource("A-1")], [appointment_resource("A-2", start=at(3, 9))]],
        lambda api: api.appointments("U/7 ü", end_after=since),
    )

    assert [item.id for item in listed] == ["A-1", "A-2"]
    assert [request.method for request in sent] == ["GET", "GET"]
    assert {request.url.raw_path.split(b"?")[0] for request in sent} == {
        b"/api/v2/users/U%2F7%20%C3%BC/appointments"
    }
    # The instant in UTC with "Z"; the fraction dropped (an earlier instant only widens it).
    assert [parse_qs(urlsplit(str(request.url)).query) for request in sent] == [
        {
            "filter[end_after]": ["2026-12-01T19:00:07Z"],
            "page[number]": [str(n)],
            "page[size]": ["100"],
        }
        for n in (1, 2)
    ]
    for request in sent:
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.headers["Accept"] == "application/json"


async def test_unavailabilities_are_read_from_their_own_listing() -> None:
    absence = payloads.unavailability(
        "N-1",
        revision=1,
        title="Vacation",
        start=at(20, 5),
        end=at(24, 5),
        staff=payloads.staff_member(JANE, "jane.doe@bank.example", "Jane", "Doe"),
    )

    listed, sent = await mock_api(
        [[dict(absence)]], lambda api: api.unavailabilities(JANE, end_after=SINCE)
    )

    assert [(item.id, item.title) for item in listed] == [("N-1", "Vacation")]
    assert sent[0].url.path == "/api/v2/users/U-42/unavailabilities"
    assert sent[0].url.params["filter[end_after]"] == "2026-11-01T00:00:00Z"


async def test_an_item_shown_twice_is_kept_once_at_its_highest_revision() -> None:
    # Rescheduled between two pages: seen at its old place, then again at its new one.
    pages = [
        [appointment_resource("A-1", 1, at(1, 9)), appointment_resource("A-2", 1, at(2, 9))],
        [appointment_resource("A-1", 2, at(3, 9))],
    ]

    listed, _ = await mock_api(pages, lambda api: api.appointments(JANE, end_after=SINCE))

    assert [(item.id, item.revision, item.start) for item in listed] == [
        ("A-2", 1, at(2, 9)),
        ("A-1", 2, at(3, 9)),
    ]


async def test_an_invalid_item_fails_the_listing_naming_where_never_what() -> None:
    broken = appointment_resource("A-2")
    broken["attributes"]["end"] = broken["attributes"]["start"]
    broken["attributes"]["attendees"][0]["first_name"] = 7
    pages = [[appointment_resource("A-1")], [broken]]

    with pytest.raises(UnexpectedCoconutAnswer) as raised:
        await mock_api(pages, lambda api: api.appointments(JANE, end_after=SINCE))

    assert raised.value.status == 200
    assert raised.value.fields == (
        "appointments[1]/attributes/end",
        "appointments[1]/attributes/attendees/0/first_name",
    )
    assert "Sam" not in str(raised.value)
    assert "sam.lee" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None


async def test_an_item_of_the_wrong_type_is_not_an_appointment() -> None:
    absence = {**appointment_resource("A-1"), "type": "unavailabilities"}

    with pytest.raises(UnexpectedCoconutAnswer) as raised:
        await mock_api([[absence]], lambda api: api.appointments(JANE, end_after=SINCE))

    assert raised.value.fields == ("appointments[0]/type",)


async def test_a_throttled_listing_page_waits_as_asked_and_goes_on(
    coconut: CoconutEmulator, api: CoconutApi, sleeps: Sleeps
) -> None:
    for n in range(150):
        book(coconut, SINCE + timedelta(hours=n))
    coconut.configure_faults(FaultPlan(scripted=(429, 429), retry_after_seconds=3))

    listed = await api.appointments(JANE, end_after=SINCE)

    assert len(listed) == 150
    assert sleeps == [3.0, 3.0]
    assert coconut.requests("GET", APPOINTMENTS, 429) == 2
    assert coconut.requests("GET", APPOINTMENTS, 200) == 2


async def test_a_listing_gives_up_after_server_errors_past_max_attempts(
    coconut: CoconutEmulator, sleeps: Sleeps
) -> None:
    coconut.configure_faults(FaultPlan(scripted=(502,) * 3))

    async with CoconutApi(coconut.base_url, API_KEY, max_attempts=3, sleep=sleeps) as api:
        with pytest.raises(CoconutUnavailable) as raised:
            await api.unavailabilities(JANE, end_after=SINCE)

    assert raised.value.status == 502
    assert coconut.requests("GET", UNAVAILABILITIES, 502) == 3
    assert len(sleeps) == 2


async def test_a_listing_of_an_unknown_user_is_reported_by_id(
    coconut: CoconutEmulator, api: CoconutApi
) -> None:
    with pytest.raises(UnknownCoconutUser) as appointments:
        await api.appointments("U-gone", end_after=SINCE)
    with pytest.raises(UnknownCoconutUser) as absences:
        await api.unavailabilities("U-gone", end_after=SINCE)

    assert (appointments.value.user_id, absences.value.user_id) == ("U-gone", "U-gone")
    assert coconut.requests(status=404) == 2


async def test_a_refused_filter_is_rejected_naming_the_parameter(sleeps: Sleeps) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        error = {
            "status": "422",
            "title": "Unprocessable Entity",
            "detail": "filter[end_after] must be a UTC RFC 3339 instant ending in Z",
            "source": {"parameter": "filter[end_after]"},
        }
        return httpx.Response(422, json={"errors": [error]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        api = CoconutApi("https://coconut.example/api/v2", API_KEY, client=client, sleep=sleeps)
        with pytest.raises(CoconutRejected) as raised:
            await api.appointments(JANE, end_after=SINCE)

    assert raised.value.status == 422
    assert raised.value.fields == ("filter[end_after]",)
    assert sleeps == []


async def test_a_listing_needs_an_aware_instant(api: CoconutApi) -> None:
    with pytest.raises(ValueError, match="aware"):
        await api.appointments(JANE, end_after=datetime(2026, 12, 1))
