"""The app settings, validated once at start-up: defaults, limits, what each mode needs, and a
refusal that names the setting but never shows its value."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from sync.content_cipher import KEY_FORMAT, DataKey, new_data_key
from sync.desired_items import MARK_TO_COMMIT
from sync.graph.pacing import MailboxRate
from sync.settings import (
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_TIMER_SCHEDULE,
    ConfigurationError,
    is_loopback_url,
    load_settings,
)

REQUIRED = {
    "COCONUT_API_BASE_URL": "https://coconut.example/api/",
    "COCONUT_API_KEY": "key-zq81",
    "COCONUT_WEBHOOK_SECRET": "secret-xv42",
    "SYNC_DATA_KEY": "c2V0dGluZ3MtdGVzdCBkYXRhIGtleSwgMzIgYnl0ZXM=",
}
EVERY_SETTING = (
    *REQUIRED,
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__clientId",
    "GRAPH_BASE_URL",
    "GRAPH_AUTH",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "COCONUT_WEBHOOK_SECRET_PREVIOUS",
    "SYNC_TIMER_SCHEDULE",
    "PUBLIC_BASE_URL",
    "GRAPH_CLIENT_STATE",
    "SYNC_HORIZON_DAYS",
    "SYNC_LEASE_SECONDS",
    "SYNC_DATA_KEY_PREVIOUS",
    "SYNC_CONTENT_RETENTION_DAYS",
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment with only the required settings set."""
    for name in EVERY_SETTING:
        monkeypatch.delenv(name, raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def refusal(environment: pytest.MonkeyPatch, **settings: str) -> str:
    for name, value in settings.items():
        environment.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    message = str(refused.value)
    for value in (*settings.values(), *REQUIRED.values()):
        if len(value) > 3:
            assert value not in message, "a setting's value is never shown"
    return message


def test_the_defaults(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.coconut_api_base_url == "https://coconut.example/api"
    assert settings.coconut_api_key.get_secret_value() == "key-zq81"
    assert settings.graph_base_url == DEFAULT_GRAPH_BASE_URL
    assert settings.graph_auth == "managed_identity"
    assert settings.sync_timer_schedule == DEFAULT_TIMER_SCHEDULE
    assert settings.sync_horizon_days == 180
    assert settings.sync_lease_seconds == 60
    assert settings.webhook_secrets == ("secret-xv42",)
    assert settings.notifications_enabled is False
    assert settings.public_base_url == ""
    assert settings.storage_connection == "UseDevelopmentStorage=true"
    assert settings.uses_identity_storage is False
    assert "key-zq81" not in repr(settings), "secrets stay out of repr()"


@pytest.mark.parametrize("name", list(REQUIRED))
def test_a_missing_required_setting_is_named(environment: pytest.MonkeyPatch, name: str) -> None:
    environment.delenv(name)

    assert refusal(environment) == f"missing required setting {name}"


@pytest.mark.parametrize("seconds", [3, 45, 600])
def test_the_lease_duration_is_read_within_its_bounds(
    environment: pytest.MonkeyPatch, seconds: int
) -> None:
    environment.setenv("SYNC_LEASE_SECONDS", str(seconds))

    assert load_settings().sync_lease_seconds == seconds


@pytest.mark.parametrize("value", ["2", "601", "0", "-60", "a minute", "1.5"])
def test_a_lease_duration_out_of_bounds_or_not_whole_seconds_is_refused(
    environment: pytest.MonkeyPatch, value: str
) -> None:
    message = refusal(environment, SYNC_LEASE_SECONDS=value)

    assert message.startswith("invalid setting SYNC_LEASE_SECONDS: ")


@pytest.mark.parametrize(("value", "accepted"), [("1", True), ("1825", True), ("0", False)])
def test_the_import_horizon_has_bounds(
    environment: pytest.MonkeyPatch, value: str, accepted: bool
) -> None:
    environment.setenv("SYNC_HORIZON_DAYS", value)
    if accepted:
        assert load_settings().sync_horizon_days == int(value)
    else:
        assert refusal(environment).startswith("invalid setting SYNC_HORIZON_DAYS: ")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("COCONUT_API_BASE_URL", "coconut.example", "must be an absolute http(s) URL"),
        ("COCONUT_API_BASE_URL", "ftp://coconut.example", "must be an absolute http(s) URL"),
        ("GRAPH_BASE_URL", "/v1.0", "must be an absolute http(s) URL"),
        ("PUBLIC_BASE_URL", "sync.example", "must be an absolute http(s) URL"),
        ("COCONUT_API_KEY", "   ", "must not be empty"),
        ("COCONUT_WEBHOOK_SECRET", "", "must not be empty"),
        ("SYNC_TIMER_SCHEDULE", "*/5 * * * *", "must be a six-field NCRONTAB expression"),
        ("GRAPH_AUTH", "password", "Input should be"),
    ],
)
def test_an_invalid_setting_is_named_with_what_is_wrong(
    environment: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    message = refusal(environment, **{name: value})

    assert message.startswith(f"invalid setting {name}: ")
    assert reason in message


def test_no_graph_authentication_only_against_a_loopback_graph(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("GRAPH_AUTH", "none")
    environment.setenv("GRAPH_BASE_URL", "http://127.0.0.1:8001/v1.0")
    assert load_settings().graph_auth == "none"

    message = refusal(environment, GRAPH_BASE_URL="https://graph.example/v1.0")
    assert message == (
        "invalid setting: GRAPH_AUTH=none is only accepted with a loopback GRAPH_BASE_URL"
    )


def test_a_client_secret_needs_tenant_client_and_secret(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("GRAPH_AUTH", "client_secret")
    assert refusal(environment) == (
        "invalid setting: AZURE_TENANT_ID is required when GRAPH_AUTH=client_secret"
    )
    environment.setenv("AZURE_TENANT_ID", "tenant-1")
    environment.setenv("AZURE_CLIENT_ID", "client-1")
    assert refusal(environment) == (
        "invalid setting: AZURE_CLIENT_SECRET is required when GRAPH_AUTH=client_secret"
    )
    environment.setenv("AZURE_CLIENT_SECRET", "s3cr3t-value")
    settings = load_settings()
    assert settings.azure_client_secret is not None
    assert settings.azure_client_secret.get_secret_value() == "s3cr3t-value"


def test_during_a_rotation_both_webhook_secrets_are_accepted_current_first(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("COCONUT_WEBHOOK_SECRET_PREVIOUS", "old-secret")
    assert load_settings().webhook_secrets == ("secret-xv42", "old-secret")
    # A Key Vault reference to an absent secret resolves to "": no previous secret.
    environment.setenv("COCONUT_WEBHOOK_SECRET_PREVIOUS", "  ")
    assert load_settings().webhook_secrets == ("secret-xv42",)


def test_the_client_state_is_derived_from_the_webhook_secret_unless_set(
    environment: pytest.MonkeyPatch,
) -> None:
    derived = load_settings().client_state
    expected = hashlib.sha256(b"graph-client-state\nsecret-xv42").hexdigest()
    assert derived == expected
    assert "secret-xv42" not in derived
    environment.setenv("COCONUT_WEBHOOK_SECRET", "another-secret")
    assert load_settings().client_state != derived, "each deployment's differs"
    environment.setenv("GRAPH_CLIENT_STATE", "state-from-key-vault")
    assert load_settings().client_state == "state-from-key-vault"
    environment.setenv("GRAPH_CLIENT_STATE", "")
    assert load_settings().client_state != "", "blank counts as unset"


def test_notifications_are_on_once_the_public_address_is_known(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("PUBLIC_BASE_URL", "https://sync.bank.example/")
    settings = load_settings()

    assert settings.notifications_enabled is True
    assert settings.public_base_url == "https://sync.bank.example"
    environment.setenv("PUBLIC_BASE_URL", "   ")
    assert load_settings().notifications_enabled is False


def test_storage_by_connection_string_or_by_managed_identity(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("AzureWebJobsStorage__queueServiceUri", "https://acct.queue.example")
    environment.setenv("AzureWebJobsStorage__tableServiceUri", "https://acct.table.example")
    assert load_settings().uses_identity_storage is True

    environment.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=a")
    settings = load_settings()
    assert settings.uses_identity_storage is False, "a connection string wins"
    assert settings.storage_connection == "DefaultEndpointsProtocol=https;AccountName=a"


def test_setting_names_are_case_sensitive(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("sync_lease_seconds", "5")

    assert load_settings().sync_lease_seconds == 60


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost:7071", True),
        ("http://127.0.0.1:8000/v1.0", True),
        ("http://[::1]:8000", True),
        ("http://127.5.6.7", True),
        ("https://graph.microsoft.com/v1.0", False),
        ("http://10.0.0.1", False),
        ("http://localhost.example.com", False),
        ("not a url", False),
    ],
)
def test_loopback_addresses(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_settings_are_frozen(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    with pytest.raises(ValueError, match="frozen"):
        settings.sync_lease_seconds = 5  # type: ignore[misc]
    assert settings.sync_lease_seconds == 60


# ----- the data key and the content retention ----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "not-base64!!",
        base64.b64encode(b"only sixteen byt").decode(),
        base64.b64encode(bytes(48)).decode(),
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/sync-data-key/)",
    ],
)
@pytest.mark.parametrize("name", ["SYNC_DATA_KEY", "SYNC_DATA_KEY_PREVIOUS"])
def test_a_malformed_data_key_stops_start_up_naming_the_setting(
    environment: pytest.MonkeyPatch, name: str, value: str
) -> None:
    message = refusal(environment, **{name: value})

    assert message == f"invalid setting {name}: {KEY_FORMAT}"


def test_the_data_keys_seal_with_the_current_and_open_with_either(
    environment: pytest.MonkeyPatch,
) -> None:
    old, new = new_data_key(), new_data_key()
    environment.setenv("SYNC_DATA_KEY", old)
    key_id, sealed = load_settings().content_cipher.seal(b"x", bound_to=b"row")
    environment.setenv("SYNC_DATA_KEY", new)
    environment.setenv("SYNC_DATA_KEY_PREVIOUS", old)

    settings = load_settings()

    assert settings.content_cipher.open(key_id, sealed, bound_to=b"row") == b"x"
    assert settings.content_cipher.current_key_id == DataKey.from_setting(new).id
    assert old not in repr(settings)
    assert new not in repr(settings)


def test_a_blank_previous_data_key_is_unset(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("SYNC_DATA_KEY_PREVIOUS", " ")

    assert load_settings().sync_data_key_previous is None


@pytest.mark.parametrize(("value", "accepted"), [("1", True), ("3650", True), ("0", False)])
def test_the_content_retention_defaults_to_30_days_within_bounds(
    environment: pytest.MonkeyPatch, value: str, accepted: bool
) -> None:
    assert load_settings().sync_content_retention_days == 30
    environment.setenv("SYNC_CONTENT_RETENTION_DAYS", value)
    if accepted:
        assert load_settings().sync_content_retention_days == int(value)
    else:
        assert refusal(environment).startswith("invalid setting SYNC_CONTENT_RETENTION_DAYS: ")


def test_the_mailbox_rate_defaults_to_graphs_limit_and_may_only_be_lowered(
    environment: pytest.MonkeyPatch,
) -> None:
    assert load_settings().graph_mailbox_rate == MailboxRate(10_000, 600.0)
    environment.setenv("GRAPH_MAILBOX_REQUESTS_PER_WINDOW", "60")
    environment.setenv("GRAPH_MAILBOX_WINDOW_SECONDS", "10")
    assert load_settings().graph_mailbox_rate == MailboxRate(60, 10.0)

    environment.setenv("GRAPH_MAILBOX_REQUESTS_PER_WINDOW", "20000")
    assert refusal(environment).startswith("invalid setting GRAPH_MAILBOX_REQUESTS_PER_WINDOW: ")


def test_a_marked_delivery_is_given_as_long_as_an_invocation_may_run() -> None:
    """`MARK_TO_COMMIT` bounds how long a run leaves a first delivery's mark for its commit:
    never shorter than host.json lets an invocation run."""
    host_json = Path(__file__).resolve().parents[2] / "host.json"
    timeout = json.loads(host_json.read_text(encoding="utf-8"))["functionTimeout"]
    hours, minutes, seconds = (int(part) for part in timeout.split(":"))
    assert timedelta(hours=hours, minutes=minutes, seconds=seconds) <= MARK_TO_COMMIT
