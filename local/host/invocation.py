"""Call a user function with its trigger value and output bindings, like the Python worker."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import BinaryBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from local.host.config import QueueOptions
from local.host.discovery import OutputBinding

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
    ) -> Any:
        values: dict[str, OutputValue[Any]] = {o.arg_name: OutputValue() for o in outputs}
        kwargs: dict[str, object] = {trigger_arg: trigger_value, **values}
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
            await client.send_message(encode_message(message, self._options))

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
