"""Call a user function with its trigger value and output bindings, like the Python worker."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions._abc import RetryContext, RpcException, TraceContext
from azure.storage.queue import BinaryBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from local.host.config import QueueOptions
from local.host.discovery import OutputBinding
from sync.storage.account import storage_transport
from sync.storage.lean_clients import random_request_id

T = TypeVar("T")
log = logging.getLogger("local.host")


class OutputValue(func.Out[T], Generic[T]):
    """The object a function receives for an output binding."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        if self._value is None:
            raise LookupError("output binding was not set")
        return self._value

    @property
    def is_set(self) -> bool:
        return self._value is not None


_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def host_traceparent(incoming: str | None = None) -> str:
    """The trace context of the host's invocation span, as the Functions host hands it over: a
    child of the caller's (an HTTP request's `traceparent`), or a new trace."""
    if incoming and _TRACEPARENT.match(incoming.strip()):
        trace_id = incoming.strip()[3:35]
    else:
        trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


class InvocationTraceContext(TraceContext):
    def __init__(self, trace_parent: str) -> None:
        self._trace_parent = trace_parent

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationRetryContext(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> RpcException:
        raise LookupError("no retry policy runs locally")


class InvocationContext(func.Context):
    """What a function's `context` parameter receives, as from the Python worker."""

    def __init__(self, function_name: str, trace_parent: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._trace_context = InvocationTraceContext(trace_parent)

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return threading.local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return os.getcwd()

    @property
    def trace_context(self) -> TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> RetryContext:
        return InvocationRetryContext()


def storage_connection_string(connection: str) -> str:
    """The connection string a binding's `connection` setting names (Azurite by default)."""
    value = os.environ.get(connection)
    if value:
        return value
    if connection == "AzureWebJobsStorage":
        return "UseDevelopmentStorage=true"
    raise KeyError(f"storage connection setting {connection} is not set")


def encode_message(message: str | bytes, options: QueueOptions) -> str | bytes:
    """What to hand the queue client: bytes under base64 encoding, text otherwise."""
    if options.message_encoding == "base64":
        return message.encode() if isinstance(message, str) else message
    return message.decode() if isinstance(message, bytes) else message


def queue_client(connection: str, queue_name: str, options: QueueOptions) -> QueueClient:
    """A queue client that encodes messages the way host.json `messageEncoding` says."""
    encode = BinaryBase64EncodePolicy() if options.message_encoding == "base64" else None
    return QueueClient.from_connection_string(
        storage_connection_string(connection),
        queue_name,
        message_encode_policy=encode,
        transport=storage_transport(),
    )


class FunctionInvoker:
    """Runs functions: async ones on the host's event loop, sync ones in a thread, as the worker."""

    def __init__(self, options: QueueOptions) -> None:
        self._options = options
        self._output_clients: dict[tuple[str, str], QueueClient] = {}

    async def invoke(
        self,
        user_function: Callable[..., Any],
        trigger_arg: str,
        trigger_value: object,
        outputs: Sequence[OutputBinding],
        *,
        function_name: str | None = None,
        traceparent: str | None = None,
    ) -> Any:
        """`traceparent`: the caller's trace context (an HTTP request's header), if any."""
        values: dict[str, OutputValue[Any]] = {o.arg_name: OutputValue() for o in outputs}
        context = InvocationContext(
            function_name or user_function.__name__, host_traceparent(traceparent)
        )
        kwargs: dict[str, object] = {trigger_arg: trigger_value, **values, "context": context}
        wanted = inspect.signature(user_function).parameters
        kwargs = {name: value for name, value in kwargs.items() if name in wanted}
        if inspect.iscoroutinefunction(user_function):
            result = await user_function(**kwargs)
        else:
            result = await asyncio.to_thread(user_function, **kwargs)
        # Like the real host, output bindings are only written when the function succeeded.
        for binding in outputs:
            value = values[binding.arg_name]
            if value.is_set:
                await self._send(binding, value.get())
        return result

    async def _send(self, binding: OutputBinding, value: object) -> None:
        client = await self._output_client(binding)
        messages = value if isinstance(value, list) else [value]
        for message in messages:
            if not isinstance(message, str | bytes):
                raise TypeError(f"queue output {binding.arg_name} takes str or bytes")
            await client.send_message(
                encode_message(message, self._options), client_request_id=random_request_id()
            )

    async def _output_client(self, binding: OutputBinding) -> QueueClient:
        key = (binding.connection, binding.queue_name)
        if key not in self._output_clients:
            client = queue_client(binding.connection, binding.queue_name, self._options)
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()
            self._output_clients[key] = client
        return self._output_clients[key]

    async def close(self) -> None:
        for client in self._output_clients.values():
            await client.close()
        self._output_clients.clear()
