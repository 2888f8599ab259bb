"""A local Azure Functions host for `function_app.py` (contracts/local-run.md).

Runs the same function app `func start` would: HTTP triggers behind a real ASGI server, timer
triggers on NCRONTAB schedules, queue triggers against Azure Storage (Azurite) with the host.json
semantics of the real host. Development and test tool only; never deployed.
"""
