"""Settings for a service that talks to local stand-ins only (Graph without authentication,
which the settings accept for a loopback address alone)."""

from __future__ import annotations

from sync.content_cipher import new_data_key
from sync.settings import Settings


def loopback_settings() -> Settings:
    return Settings.model_validate(
        {
            "GRAPH_BASE_URL": "http://127.0.0.1:8081/v1.0",
            "GRAPH_AUTH": "none",
            "COCONUT_API_BASE_URL": "http://127.0.0.1:8082/api/v2",
            "COCONUT_API_KEY": "local-coconut-api-key",
            "COCONUT_WEBHOOK_SECRET": "local-webhook-secret",
            "SYNC_DATA_KEY": new_data_key(),
        }
    )
