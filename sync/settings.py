"""The app settings the service reads, validated once at start-up.

Names are fixed by the local-run contract (they are the Azure app settings). A missing or invalid
required setting raises `ConfigurationError` with one line naming the setting — never its value,
since several settings are secrets.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from croniter import croniter
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sync.content_cipher import ContentCipher, DataKey
from sync.graph.pacing import GRAPH_MAILBOX_REQUESTS, GRAPH_MAILBOX_WINDOW_SECONDS, MailboxRate

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_TIMER_SCHEDULE = "0 */5 * * * *"
DEFAULT_RECONCILE_SCHEDULE = "0 30 * * * *"
# Days an item's content is kept after it ended (docs/data-map.md says why 30).
DEFAULT_CONTENT_RETENTION_DAYS = 30
# Graph's limit for a subscription's clientState.
MAX_CLIENT_STATE = 128

GraphAuth = Literal["managed_identity", "client_secret", "none"]


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message is one line naming it."""


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_url(value: str, setting: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{setting} must be an absolute http(s) URL")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Every app setting of the service. Field aliases are the exact setting names."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    storage_connection_string: str | None = Field(default=None, alias="AzureWebJobsStorage")
    # Identity-based storage in Azure (AzureWebJobsStorage__* settings, see infra/).
    storage_queue_service_uri: str | None = Field(
        default=None, alias="AzureWebJobsStorage__queueServiceUri"
    )
    storage_table_service_uri: str | None = Field(
        default=None, alias="AzureWebJobsStorage__tableServiceUri"
    )
    storage_client_id: str | None = Field(default=None, alias="AzureWebJobsStorage__clientId")

    graph_base_url: str = Field(default=DEFAULT_GRAPH_BASE_URL, alias="GRAPH_BASE_URL")
    graph_auth: GraphAuth = Field(default="managed_identity", alias="GRAPH_AUTH")
    azure_tenant_id: str | None = Field(default=None, alias="AZURE_TENANT_ID")
    azure_client_id: str | None = Field(default=None, alias="AZURE_CLIENT_ID")
    azure_client_secret: SecretStr | None = Field(default=None, alias="AZURE_CLIENT_SECRET")

    coconut_api_base_url: str = Field(alias="COCONUT_API_BASE_URL")
    coconut_api_key: SecretStr = Field(alias="COCONUT_API_KEY")
    coconut_webhook_secret: SecretStr = Field(alias="COCONUT_WEBHOOK_SECRET")
    coconut_webhook_secret_previous: SecretStr | None = Field(
        default=None, alias="COCONUT_WEBHOOK_SECRET_PREVIOUS"
    )

    sync_timer_schedule: str = Field(default=DEFAULT_TIMER_SCHEDULE, alias="SYNC_TIMER_SCHEDULE")
    # The read of every synced staff member's listings from the Coconut API.
    coconut_reconcile_schedule: str = Field(
        default=DEFAULT_RECONCILE_SCHEDULE, alias="COCONUT_RECONCILE_SCHEDULE"
    )
    public_base_url: str = Field(default="", alias="PUBLIC_BASE_URL")
    # Secret Graph echoes in every change notification (Key Vault reference in Azure).
    graph_client_state: SecretStr | None = Field(default=None, alias="GRAPH_CLIENT_STATE")
    # How far into the future Exchange busy time is imported.
    sync_horizon_days: int = Field(default=180, ge=1, le=1825, alias="SYNC_HORIZON_DAYS")
    # How long a staff lease lasts unless renewed: how long a worker that died blocks its
    # mailbox. Renewed every third of it while a run lasts.
    sync_lease_seconds: int = Field(default=60, ge=3, le=600, alias="SYNC_LEASE_SECONDS")
    # The key that encrypts customer content at rest (sync.content_cipher), and the one before
    # it while a rotation is finished (python -m sync.ops rotate-data-key).
    sync_data_key: SecretStr = Field(alias="SYNC_DATA_KEY")
    sync_data_key_previous: SecretStr | None = Field(default=None, alias="SYNC_DATA_KEY_PREVIOUS")
    # Days an item's content is kept once the item has ended (sync.retention).
    sync_content_retention_days: int = Field(
        default=DEFAULT_CONTENT_RETENTION_DAYS, ge=1, le=3650, alias="SYNC_CONTENT_RETENTION_DAYS"
    )

    # Outlook's per-app, per-mailbox request limit (graph/throttling-limits), which the service
    # paces itself to (sync.graph.pacing). Only to be lowered, e.g. to leave room for another
    # app of the same registration, or to match an emulator's.
    graph_mailbox_requests_per_window: int = Field(
        default=GRAPH_MAILBOX_REQUESTS,
        ge=1,
        le=GRAPH_MAILBOX_REQUESTS,
        alias="GRAPH_MAILBOX_REQUESTS_PER_WINDOW",
    )
    graph_mailbox_window_seconds: float = Field(
        default=GRAPH_MAILBOX_WINDOW_SECONDS, gt=0, le=3600, alias="GRAPH_MAILBOX_WINDOW_SECONDS"
    )

    @field_validator("graph_base_url")
    @classmethod
    def _graph_url(cls, value: str) -> str:
        return _http_url(value, "GRAPH_BASE_URL")

    @field_validator("coconut_api_base_url")
    @classmethod
    def _coconut_url(cls, value: str) -> str:
        return _http_url(value, "COCONUT_API_BASE_URL")

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.strip():
            return ""
        url = _http_url(value, "PUBLIC_BASE_URL")
        # Graph posts change notifications to https endpoints only; plain http is for the
        # local stack on loopback.
        if urlsplit(url).scheme != "https" and not is_loopback_url(url):
            raise ValueError("PUBLIC_BASE_URL must be an https URL (http only on loopback)")
        return url

    @field_validator("graph_client_state")
    @classmethod
    def _client_state_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) > MAX_CLIENT_STATE:
            raise ValueError(f"must be at most {MAX_CLIENT_STATE} characters (Graph's limit)")
        return value

    @field_validator("coconut_webhook_secret", "coconut_api_key")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("sync_data_key", "sync_data_key_previous")
    @classmethod
    def _data_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            DataKey.from_setting(value.get_secret_value())
        return value

    @field_validator(
        "coconut_webhook_secret_previous",
        "graph_client_state",
        "sync_data_key_previous",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # Key Vault references to an absent optional secret resolve to "".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("sync_timer_schedule", "coconut_reconcile_schedule")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        if len(value.split()) != 6 or not croniter.is_valid(value, second_at_beginning=True):
            raise ValueError("must be a six-field NCRONTAB expression (seconds first)")
        return value

    @model_validator(mode="after")
    def _graph_auth_needs(self) -> Settings:
        if self.graph_auth == "none" and not is_loopback_url(self.graph_base_url):
            raise ValueError("GRAPH_AUTH=none is only accepted with a loopback GRAPH_BASE_URL")
        if self.graph_auth == "client_secret":
            for name, value in (
                ("AZURE_TENANT_ID", self.azure_tenant_id),
                ("AZURE_CLIENT_ID", self.azure_client_id),
                ("AZURE_CLIENT_SECRET", self.azure_client_secret),
            ):
                if not value:
                    raise ValueError(f"{name} is required when GRAPH_AUTH=client_secret")
        return self

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """Every secret a webhook signature may be made with (current first)."""
        secrets = [self.coconut_webhook_secret.get_secret_value()]
        if self.coconut_webhook_secret_previous is not None:
            secrets.append(self.coconut_webhook_secret_previous.get_secret_value())
        return tuple(secrets)

    @property
    def reconcile_period_seconds(self) -> float:
        """Seconds between two scheduled repairs (the next two firings from now)."""
        schedule = croniter(
            self.coconut_reconcile_schedule, datetime.now(UTC), second_at_beginning=True
        )
        first = schedule.get_next(datetime)
        return float((schedule.get_next(datetime) - first).total_seconds())

    @property
    def graph_mailbox_rate(self) -> MailboxRate:
        return MailboxRate(
            self.graph_mailbox_requests_per_window, self.graph_mailbox_window_seconds
        )

    @property
    def content_cipher(self) -> ContentCipher:
        """Seals with SYNC_DATA_KEY; opens with it or SYNC_DATA_KEY_PREVIOUS."""
        previous = self.sync_data_key_previous
        return ContentCipher(
            DataKey.from_setting(self.sync_data_key.get_secret_value()),
            DataKey.from_setting(previous.get_secret_value()) if previous is not None else None,
        )

    @property
    def notifications_enabled(self) -> bool:
        return bool(self.public_base_url)

    @property
    def client_state(self) -> str:
        """The secret Graph echoes in notifications. Without GRAPH_CLIENT_STATE it is derived
        from the webhook secret, so notifications still cannot be forged."""
        if self.graph_client_state is not None:
            return self.graph_client_state.get_secret_value()
        digest = hashlib.sha256(b"graph-client-state\n" + self.webhook_secrets[0].encode())
        return digest.hexdigest()

    @property
    def uses_identity_storage(self) -> bool:
        return self.storage_connection_string is None and bool(
            self.storage_queue_service_uri and self.storage_table_service_uri
        )

    @property
    def storage_connection(self) -> str:
        """The storage connection string; Azurite's when nothing is configured (local default)."""
        return self.storage_connection_string or "UseDevelopmentStorage=true"


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "settings"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        return f"missing required setting {location}"
    if not first["loc"]:
        return f"invalid setting: {message}"
    return f"invalid setting {location}: {message}"


def load_settings() -> Settings:
    """Read and validate the settings from the environment (the app settings in Azure)."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(_describe(error)) from None
