"""Assemble the emulator's ASGI app: the Coconut API under its base path, the control API beside."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from local.coconut_emulator.api import CoconutApi
from local.coconut_emulator.changes import SilentChanges
from local.coconut_emulator.control import ControlApi
from local.coconut_emulator.faults import FaultInjector
from local.coconut_emulator.paths import RawPathRouting
from local.coconut_emulator.state import CoconutState

DEFAULT_BASE_PATH = "/api/v2"
CONTROL_PATH = "/_emulator"


def normalise_base_path(base_path: str) -> str:
    base_path = "/" + base_path.strip("/")
    if base_path == "/" or base_path == CONTROL_PATH:
        raise ValueError("the API base path must be a non-root path other than /_emulator")
    return base_path


def build_app(
    state: CoconutState,
    faults: FaultInjector,
    api_key: str,
    base_path: str = DEFAULT_BASE_PATH,
    changes: SilentChanges | None = None,
) -> Starlette:
    api = CoconutApi(state, faults, api_key)
    control = ControlApi(state, faults, changes)
    return Starlette(
        routes=[
            Mount(normalise_base_path(base_path), app=api.gateway),
            Mount(CONTROL_PATH, routes=control.routes()),
        ],
        middleware=[Middleware(RawPathRouting)],
    )
