"""Azure Functions entry point: triggers only. Each function parses its input, calls one function
in `sync/`, and maps the outcome to a response; no business rule lives here."""

from __future__ import annotations

import azure.functions as func

from sync.settings import load_settings

# Validated at start-up: a missing or invalid setting stops the app with one line naming it.
settings = load_settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
