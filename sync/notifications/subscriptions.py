"""One Graph subscription per synced mailbox on its events, created and renewed by the staff
worker under the staff lease (so two workers never race for one mailbox's subscription)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.subscription import Subscription
from msgraph.graph_service_client import GraphServiceClient

from sync.errors import EventGone
from sync.graph.calls import GraphCaller
from sync.graph.errors import MailboxUnreachable
from sync.staff_record import SubscriptionState

# Outlook events allow at most 10,080 minutes; renew well before the end.
LIFETIME = timedelta(days=3)
RENEW_WHEN_LEFT = timedelta(days=1)
NOTIFICATION_ROUTE = "api/graph/notifications"
# A 404 on `/subscriptions/{id}` ("ResourceNotFound") means the subscription is gone, whatever
# the code: the mailbox's own 404s only answer requests on the mailbox.
SUBSCRIPTION_GONE = (EventGone, MailboxUnreachable)
LIFECYCLE_ROUTE = "api/graph/lifecycle"


def notification_url(public_base_url: str, route: str, staff_id: str) -> str:
    """Where Graph posts for this staff member; the staff id rides in the query string."""
    return f"{public_base_url}/{route}?staff={quote(staff_id, safe='')}"


def is_current(state: SubscriptionState, user_id: str, now: datetime) -> bool:
    """The mailbox's subscription is there and good for a while yet: nothing to do."""
    expires = state.expires_at
    return bool(
        state.id and state.user_id == user_id and expires and expires - now > RENEW_WHEN_LEFT
    )


class GraphSubscriptions:
    """`sync.ports.ChangeSubscriptions` on Graph."""

    def __init__(
        self,
        client: GraphServiceClient,
        caller: GraphCaller,
        public_base_url: str,
        client_state: str,
    ) -> None:
        self._client = client
        self._caller = caller
        self._public_base_url = public_base_url
        self._client_state = client_state

    async def ensure(
        self,
        staff_id: str,
        user_id: str,
        current: SubscriptionState,
        before_create: Callable[[SubscriptionState], Awaitable[None]] | None = None,
    ) -> SubscriptionState | None:
        """Create or renew the mailbox's subscription when needed; the state to store, or None
        when the current one is good for a while yet. `before_create` stores a mark before a
        create is sent, so that only a create whose answer was lost costs a look-up."""
        now = datetime.now(UTC)
        same_mailbox = current.user_id == user_id
        if is_current(current, user_id, now):
            return None
        if current.id and same_mailbox:
            try:
                return await self._renew(user_id, current.id, now + LIFETIME)
            except SUBSCRIPTION_GONE:
                pass  # removed on Graph's side: make a new one
        elif current.id:
            await self.remove(current.user_id or user_id, current.id)
        if current.creating_since is not None:
            # A create whose answer was lost left a subscription nobody recorded: reuse it
            # rather than leave a duplicate that notifies twice until it expires. Only then:
            # Graph lists every subscription of the app, so a look-up on each first sync would
            # cost a bank's onboarding a listing of all its mailboxes' subscriptions per mailbox.
            orphan = await self._existing(staff_id, user_id)
            if orphan is not None:
                try:
                    return await self._renew(user_id, orphan, now + LIFETIME)
                except SUBSCRIPTION_GONE:
                    pass
        if before_create is not None:
            await before_create(SubscriptionState(creating_since=now))
        return await self._create(staff_id, user_id, now + LIFETIME)

    async def _existing(self, staff_id: str, user_id: str) -> str | None:
        """The id of a subscription this app holds on the mailbox for this staff member (any
        extra ones are deleted), or None."""
        url = notification_url(self._public_base_url, NOTIFICATION_ROUTE, staff_id)
        resource = f"users/{user_id}/events".casefold()
        listed = await self._caller.call(
            user_id, lambda: self._client.subscriptions.get(request_configuration=_config())
        )
        mine = [
            found.id
            for found in (listed.value if listed and listed.value else [])
            if found.id
            and (found.resource or "").strip("/").casefold() == resource
            and found.notification_url == url
        ]
        for extra in mine[1:]:
            await self.remove(user_id, extra)
        return mine[0] if mine else None

    async def _create(self, staff_id: str, user_id: str, expires: datetime) -> SubscriptionState:
        body = Subscription(
            change_type="created,updated,deleted",
            notification_url=notification_url(self._public_base_url, NOTIFICATION_ROUTE, staff_id),
            lifecycle_notification_url=notification_url(
                self._public_base_url, LIFECYCLE_ROUTE, staff_id
            ),
            resource=f"users/{user_id}/events",
            expiration_date_time=expires,
            client_state=self._client_state,
        )
        # Never replayed here: a create whose answer was lost made a subscription, which the
        # next `ensure` finds and reuses (`_existing`).
        created = await self._caller.call(
            user_id,
            lambda: self._client.subscriptions.post(body, request_configuration=_config()),
            replayable=False,
        )
        if created is None or created.id is None:
            raise ValueError("Graph returned no subscription")
        return SubscriptionState(
            id=created.id,
            expires_at=created.expiration_date_time or expires,
            user_id=user_id,
            error="",
            creating_since=None,
        )

    async def _renew(
        self, user_id: str, subscription_id: str, expires: datetime
    ) -> SubscriptionState:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        body = Subscription(expiration_date_time=expires)
        renewed = await self._caller.call(
            user_id, lambda: item.patch(body, request_configuration=_config())
        )
        return SubscriptionState(
            id=subscription_id,
            expires_at=(renewed.expiration_date_time if renewed else None) or expires,
            user_id=user_id,
            error="",
            creating_since=None,
        )

    async def remove(self, user_id: str, subscription_id: str) -> None:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        try:
            await self._caller.call(user_id, lambda: item.delete(request_configuration=_config()))
        except SUBSCRIPTION_GONE:
            return


def _config() -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration()
    config.headers.add("Prefer", 'IdType="ImmutableId"')
    return config
