"""Find the functions of a v2-model `function_app.py` through azure-functions' own metadata."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.core import BindingDirection


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: frozenset[str] | None  # None: every method
    trigger_arg: str
    outputs: tuple[OutputBinding, ...]
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    run_on_startup: bool
    trigger_arg: str
    outputs: tuple[OutputBinding, ...]
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class QueueFunction:
    name: str
    queue_name: str
    connection: str
    trigger_arg: str
    outputs: tuple[OutputBinding, ...]
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class OutputBinding:
    """A `queue_output` binding: the function sets it, the host sends after success."""

    arg_name: str
    queue_name: str
    connection: str


FunctionSpec = HttpFunction | TimerFunction | QueueFunction


class UnsupportedBinding(Exception):
    """The app uses a trigger or binding this local host does not run."""


def load_function_app(script_root: Path, module_name: str = "function_app") -> func.FunctionApp:
    """Import the app module from the script root and return its one FunctionApp."""
    root = str(script_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(module_name)
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionApp)]
    if len(apps) != 1:
        raise UnsupportedBinding(f"{module_name}.py must define exactly one FunctionApp")
    return apps[0]


def describe_functions(app: func.FunctionApp) -> list[FunctionSpec]:
    specs: list[FunctionSpec] = []
    for function in app.get_functions():
        specs.append(_describe(function))
    return specs


def _describe(function: Any) -> FunctionSpec:
    name = str(function.get_function_name())
    trigger = function.get_trigger()
    user_function = function.get_user_function()
    outputs = tuple(_outputs(function))
    bound = trigger.get_dict_repr()
    trigger_type = bound["type"]
    if trigger_type == "httpTrigger":
        methods = bound.get("methods")
        return HttpFunction(
            name=name,
            route=str(bound.get("route") or name),
            methods=frozenset(str(m).upper() for m in methods) if methods else None,
            trigger_arg=trigger.name,
            outputs=outputs,
            user_function=user_function,
        )
    if trigger_type == "timerTrigger":
        return TimerFunction(
            name=name,
            schedule=str(bound["schedule"]),
            run_on_startup=bool(bound.get("runOnStartup", False)),
            trigger_arg=trigger.name,
            outputs=outputs,
            user_function=user_function,
        )
    if trigger_type == "queueTrigger":
        return QueueFunction(
            name=name,
            queue_name=str(bound["queueName"]),
            connection=str(bound.get("connection") or "AzureWebJobsStorage"),
            trigger_arg=trigger.name,
            outputs=outputs,
            user_function=user_function,
        )
    raise UnsupportedBinding(f"function {name}: trigger {trigger_type} is not supported locally")


def _outputs(function: Any) -> list[OutputBinding]:
    outputs: list[OutputBinding] = []
    for binding in function.get_bindings():
        data = binding.get_dict_repr()
        if data.get("direction") != BindingDirection.OUT:
            continue
        if data["type"] == "http":
            continue  # the HTTP response is the return value
        if data["type"] != "queue":
            raise UnsupportedBinding(
                f"function {function.get_function_name()}: output {data['type']} not supported"
            )
        outputs.append(
            OutputBinding(
                arg_name=str(data["name"]),
                queue_name=str(data["queueName"]),
                connection=str(data.get("connection") or "AzureWebJobsStorage"),
            )
        )
    return outputs
