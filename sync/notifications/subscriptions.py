"""One Graph subscription per synced mailbox on its events, created and renewed by the staff
worker under the staff lease (so two workers never race for one mailbox's subscription)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.subscription import Subscription
from msgraph.graph_service_client import GraphServiceClient

from sync.graph.calls import GraphCaller
from sync.graph.errors import NotFound
from sync.storage.staff_records import StaffRecord

# Outlook events allow at most 10,080 minutes; renew well before the end.
LIFETIME = timedelta(days=3)
RENEW_WHEN_LEFT = timedelta(days=1)
NOTIFICATION_ROUTE = "api/graph/notifications"
LIFECYCLE_ROUTE = "api/graph/lifecycle"


@dataclass(frozen=True)
class SubscriptionState:
    subscription_id: str
    expires_at: datetime

    def fields(self) -> dict[str, Any]:
        return {"SubscriptionId": self.subscription_id, "SubscriptionExpiresAt": self.expires_at}


def notification_url(public_base_url: str, route: str, staff_id: str) -> str:
    """Where Graph posts for this staff member; the staff id rides in the query string."""
    return f"{public_base_url}/{route}?staff={quote(staff_id, safe='')}"


class MailboxSubscriptions:
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
        self, staff_id: str, user_id: str, record: StaffRecord | None
    ) -> dict[str, Any]:
        """Create or renew the mailbox's subscription when needed; the record fields to store."""
        now = datetime.now(UTC)
        current = record.get("SubscriptionId") if record else None
        expires = record.get("SubscriptionExpiresAt") if record else None
        same_mailbox = record is not None and record.get("SubscribedUserId") == user_id
        if current and same_mailbox and expires and expires - now > RENEW_WHEN_LEFT:
            return {}
        if current and same_mailbox:
            try:
                return (await self._renew(user_id, current, now + LIFETIME)).fields()
            except NotFound:
                pass  # removed on Graph's side: make a new one
        elif current:
            await self.remove(user_id, current)
        state = await self._create(staff_id, user_id, now + LIFETIME)
        return {**state.fields(), "SubscribedUserId": user_id}

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
        created = await self._caller.call(
            user_id, lambda: self._client.subscriptions.post(body, request_configuration=_config())
        )
        if created is None or created.id is None:
            raise ValueError("Graph returned no subscription")
        return SubscriptionState(created.id, created.expiration_date_time or expires)

    async def _renew(
        self, user_id: str, subscription_id: str, expires: datetime
    ) -> SubscriptionState:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        body = Subscription(expiration_date_time=expires)
        renewed = await self._caller.call(
            user_id, lambda: item.patch(body, request_configuration=_config())
        )
        return SubscriptionState(
            subscription_id, (renewed.expiration_date_time if renewed else None) or expires
        )

    async def remove(self, user_id: str, subscription_id: str) -> None:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        try:
            await self._caller.call(user_id, lambda: item.delete(request_configuration=_config()))
        except NotFound:
            return


def _config() -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration()
    config.headers.add("Prefer", 'IdType="ImmutableId"')
    return config
