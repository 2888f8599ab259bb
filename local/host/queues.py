"""Queue triggers with the real host's semantics (host.json `extensions.queues`).

- polls up to `batchSize` messages, fetching again when in-flight work drops to
  `newBatchThreshold`; polling backs off exponentially (with jitter) to `maxPollingInterval` while
  the queue is empty;
- a message stays invisible while its function runs (the lease is renewed), is deleted on success,
  and on failure becomes visible again after `visibilityTimeout`;
- the function sees the dequeue count; after `maxDequeueCount` failed attempts (or when a message
  is picked up with a higher count, e.g. after crashes) it moves to `<queue>-poison`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import BinaryBase64DecodePolicy, QueueMessage
from azure.storage.queue.aio import QueueClient

from local.host.config import QueueOptions
from local.host.discovery import QueueFunction
from local.host.invocation import (
    FunctionInvoker,
    encode_message,
    queue_client,
    storage_connection_string,
)
from sync.storage.account import storage_transport
from sync.storage.lean_clients import random_request_id

log = logging.getLogger("local.host")

MIN_POLLING_INTERVAL = 0.1


class QueueListener:
    """Runs one queue-triggered function against its queue."""

    def __init__(
        self,
        function: QueueFunction,
        options: QueueOptions,
        invoker: FunctionInvoker,
        lease_seconds: float = 600.0,
    ) -> None:
        self._function = function
        self._options = options
        self._invoker = invoker
        self._lease_seconds = lease_seconds
        self._queue = self._client(function.queue_name)
        self._poison = queue_client(function.connection, f"{function.queue_name}-poison", options)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def _client(self, queue_name: str) -> QueueClient:
        decode = BinaryBase64DecodePolicy() if self._options.message_encoding == "base64" else None
        return QueueClient.from_connection_string(
            storage_connection_string(self._function.connection),
            queue_name,
            message_decode_policy=decode,
            transport=storage_transport(),
        )

    async def start(self) -> None:
        for client in (self._queue, self._poison):
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()
        self._task = asyncio.create_task(self._poll_forever(), name=f"queue:{self._function.name}")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._queue.close()
        await self._poison.close()

    async def _poll_forever(self) -> None:
        delay = MIN_POLLING_INTERVAL
        while not self._stopping.is_set():
            found = 0
            if len(self._in_flight) <= self._options.new_batch_threshold:
                try:
                    found = await self._fetch_batch()
                except Exception as error:  # storage briefly unavailable: keep polling
                    log.warning("queue %s: polling failed: %s", self._function.queue_name, error)
            if found:
                delay = MIN_POLLING_INTERVAL
                continue
            delay = min(delay * 2, self._options.max_polling_interval)
            jittered = random.uniform(delay / 2, delay)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=jittered)

    async def _fetch_batch(self) -> int:
        received = self._queue.receive_messages(
            messages_per_page=self._options.batch_size,
            max_messages=self._options.batch_size,
            visibility_timeout=int(self._lease_seconds),
        )
        count = 0
        async for message in received:
            count += 1
            task = asyncio.create_task(self._process(message))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return count

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # room for another batch

    async def _process(self, message: QueueMessage) -> None:
        attempt = message.dequeue_count or 1
        if attempt > self._options.max_dequeue_count:
            await self._move_to_poison(message)
            return
        renewal = asyncio.create_task(self._keep_invisible(message))
        try:
            await self._invoker.invoke(
                self._function.user_function,
                self._function.trigger_arg,
                _trigger_message(message),
                self._function.outputs,
                function_name=self._function.name,
            )
        except asyncio.CancelledError:
            renewal.cancel()
            await self._release(message)
            raise
        except Exception:
            renewal.cancel()
            log.exception(
                "Executed 'Functions.%s' (Failed, Id=%s, DequeueCount=%s)",
                self._function.name,
                message.id,
                message.dequeue_count,
            )
            if attempt >= self._options.max_dequeue_count:
                await self._move_to_poison(message)
            else:
                await self._release(message)
            return
        renewal.cancel()
        with contextlib.suppress(ResourceNotFoundError):
            await self._queue.delete_message(
                message.id, message.pop_receipt, client_request_id=random_request_id()
            )

    async def _keep_invisible(self, message: QueueMessage) -> None:
        """Renew the message's invisibility at half its lease, like the real host."""
        while True:
            await asyncio.sleep(self._lease_seconds / 2)
            receipt = await self._queue.update_message(
                message.id, message.pop_receipt, visibility_timeout=int(self._lease_seconds)
            )
            message.pop_receipt = receipt.pop_receipt

    async def _release(self, message: QueueMessage) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._queue.update_message(
                message.id,
                message.pop_receipt,
                visibility_timeout=int(self._options.visibility_timeout),
            )

    async def _move_to_poison(self, message: QueueMessage) -> None:
        log.error(
            "Message %s of queue %s moved to %s-poison after %s attempts",
            message.id,
            self._function.queue_name,
            self._function.queue_name,
            message.dequeue_count,
        )
        await self._poison.send_message(encode_message(message.content, self._options))
        with contextlib.suppress(ResourceNotFoundError):
            await self._queue.delete_message(
                message.id, message.pop_receipt, client_request_id=random_request_id()
            )


def _trigger_message(message: QueueMessage) -> func.QueueMessage:
    content = message.content
    body = content if isinstance(content, bytes) else str(content).encode()
    return TriggerMessage(  # type: ignore[no-untyped-call]
        id=message.id,
        body=body,
        dequeue_count=message.dequeue_count,
        insertion_time=message.inserted_on,
        expiration_time=message.expires_on,
        time_next_visible=message.next_visible_on or datetime.now(UTC),
        pop_receipt=message.pop_receipt,
    )
