"""The WebSocket transport (graphql-transport-ws) and what it tolerates.

- The token (or the console's session cookie with its CSRF token, see
  ``service.api.credentials``) comes in the ``connection_init`` payload, is checked again on every subscribe
  and every ``ws_reauth_seconds`` (connections holding the same credential share these
  periodic re-checks, see ``service.api.rechecks``). The re-check runs beside the keep-alive,
  never in its way: pings go out on time whatever the store does.
- Re-check rule: a revoked, expired or unknown token closes the connection (4403). A
  re-check that cannot reach the store (or takes longer than the re-check interval) keeps
  the connection, as long as the last successful check is less than
  ``ws_reauth_grace_seconds`` old; past that the connection is closed with 1013 ("try
  again later"), and the client's reconnect is checked afresh.
- The server pings every ``ws_keepalive_seconds`` (a ping framed once, written straight onto
  the transport when it can take it now, see ``service.api.wire``); a connection with no message from the
  client (pongs included) for ``ws_idle_timeout_seconds``, or with no operation and only
  pongs that long, is closed (1001). A ping that cannot even be written (the client
  stopped reading) does not hold the watchdog up.
- A subscriber whose backlog overflows (see ``service.events.hub``) has its connection
  closed with 1013; if the close itself cannot be written within a few seconds the
  connection is dropped. The kernel's send buffer per connection is capped at
  ``ws_send_buffer_bytes``, so a client that stops reading backs up into its backlog
  (and is noticed) instead of into megabytes of socket memory.
- A client that goes away is one INFO line in the log.
- Subscriptions follow a broadcast (``service.api.broadcasts``): every connection asking
  for the same document and variables with the same audience (role, rep, device; any token)
  shares one execution; each has
  its own bounded queue of rendered frames. A ``next`` frame the connection can take now is
  written straight onto its transport instead (``service.api.wire``), unless the client
  already completed the operation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation

from service.api.context import Context
from service.api.credentials import Credential, authenticate
from service.api.errors import internal_error
from service.api.rate_limit import retry_after
from service.api.rechecks import Check
from service.api.wire import DirectWriter, text_frame
from service.auth.access import AuthError
from service.store.unavailable import as_unavailable

if TYPE_CHECKING:
    from service.api.view import FieldSyncGraphQL

log = logging.getLogger("fieldsync.api")

TRANSPORT = "fieldsync.transport"  # scope key (see ExposeTransport)
CLOSE_TIMEOUT = 3.0  # seconds a close frame may wait behind unread data before the connection is dropped
PING = text_frame(b'{"type":"ping"}')  # the keep-alive ping, framed once for every connection


class FieldSyncTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with keep-alive pings, idle close, token re-checks and slow-subscriber drops."""

    view: FieldSyncGraphQL

    async def handle(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_message = self._last_activity = self._last_auth = loop.time()
        self._reauth: asyncio.Task[bool] | None = None
        self._dropping: asyncio.Task[None] | None = None
        self.context.extra["on_overflow"] = self._overflowed
        self._limit_send_buffer(self.view.services.settings.ws_send_buffer_bytes)
        ws, transport = self._ws(), self._transport()
        self._writer = DirectWriter(ws, transport) if ws is not None and transport is not None else None
        watchdog = asyncio.create_task(self._watch())
        try:
            await super().handle()
        finally:
            for task in (watchdog, self._reauth):
                if task is not None:
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
            if self._closed_by_client():
                log.info("%s closed its WebSocket", self._client())

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("WebSocket message must be a JSON object with a type")
            return
        now = asyncio.get_running_loop().time()
        self._last_message = now
        if message["type"] != "pong":
            self._last_activity = now
        await super().handle_message(message)  # type: ignore[arg-type]

    async def handle_connection_init(self, message: Any) -> None:
        if not self.connection_init_received:
            connection = self.context.extra["connection"]
            credential = Credential.of_connection_init(connection, message.get("payload"))
            wait = self.view.limiter.take(credential.budget(self.context.extra.get("client")))
            if wait:
                self.connection_init_received = True  # the init timeout has nothing left to do
                await self._close(4429, f"Too many requests; retry in {retry_after(wait)} s")
                return
        try:
            await super().handle_connection_init(message)
        except Exception as error:  # the token could not be checked
            await self._close_for(error, "connection_init")

    async def handle_subscribe(self, message: Any) -> None:
        payload = message.get("payload")
        if (
            not isinstance(message.get("id"), str)
            or not isinstance(payload, dict)
            or not isinstance(payload.get("query"), str)
            or not isinstance(payload.get("variables"), dict | None)
            or not isinstance(payload.get("operationName"), str | None)
        ):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        if self.connection_acknowledged:
            if not await self._still_authenticated(partial(authenticate, self.view.services)):
                return
            credential = self.context.extra.get("credential") or Credential()
            wait = self.view.limiter.take(credential.budget(None))
            if wait:  # a subscribe spends the token's budget like a request does
                error = GraphQLError(
                    f"too many requests; retry in {retry_after(wait)} s",
                    extensions={"code": "RATE_LIMITED", "retryAfter": retry_after(wait)},
                )
                await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
                return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Subscriptions follow the broadcast of their (document, variables, audience): one execution for all."""
        if not self._is_subscription(operation):
            await super().run_operation(operation)
            return
        principal = self.context.principal
        key = (
            operation.query,
            json.dumps(operation.variables, sort_keys=True),
            operation.operation_name,
            principal.audience if principal else None,
        )
        broadcasts = self.view.services.broadcasts
        write_now = partial(self._write_now, operation, self._writer) if self._writer is not None else None
        token_id = principal.token_id if principal else None
        try:
            async with broadcasts.follow(
                key, partial(self._stream, operation), self._overflowed, operation.id, write_now, token_id
            ) as frames:
                async for frame in frames:
                    if frame.final:  # the base class's bookkeeping: the id is free again
                        await operation.send_operation_message(json.loads(frame.text(operation.id)))
                    elif not operation.completed:
                        await self._send_text(frame.text(operation.id))
        except (WebSocketDisconnected, WebSocketDisconnect, OSError):
            return  # the client went away; handle() logs it

    def _is_subscription(self, operation: Operation[Context, None]) -> bool:
        try:
            document = parse(operation.query, max_tokens=self.view.services.settings.max_tokens)
        except GraphQLError:
            return False  # the base class answers it
        found = get_operation_ast(document, operation.operation_name)
        return found is not None and found.operation is OperationType.SUBSCRIPTION

    async def _stream(self, operation: Operation[Context, None], went_live: Callable[[], None]) -> AsyncIterator[Any]:
        """The operation run for a broadcast: its own context, so no one connection's lifetime is its lifetime.
        What it shows depends on the audience only (a revoked token ends its own followers, see ``broadcasts``)."""
        context = Context(services=self.view.services, principal=self.context.principal)
        context.extra["on_subscribed"] = went_live  # called once the event hub holds the subscription
        return await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=context,
            root_value=self.root_value,
            operation_name=operation.operation_name,
        )

    def _write_now(self, operation: Operation[Context, None], writer: DirectWriter, frame: bytes) -> bool:
        """A frame straight onto the transport, while the operation runs (neither side completed it)."""
        return self.operations.get(operation.id) is operation and not operation.completed and writer.write(frame)

    async def _send_text(self, text: str) -> None:
        ws = self._ws()
        if ws is None:
            raise WebSocketDisconnected
        try:
            await ws.send_text(text)
        except RuntimeError:  # sent after the close
            raise WebSocketDisconnected from None

    async def _watch(self) -> None:
        settings = self.view.services.settings
        keepalive, idle = settings.ws_keepalive_seconds, settings.ws_idle_timeout_seconds
        reauth = settings.ws_reauth_seconds
        tick = max(0.05, min([v for v in (keepalive, idle, reauth) if v > 0] or [4.0]) / 4)
        loop = asyncio.get_running_loop()
        last_ping = next_reauth = loop.time()
        try:
            while True:
                await asyncio.sleep(tick)
                if not self.connection_acknowledged:
                    continue  # the connection_init timeout (4408) is the base handler's
                now = loop.time()
                if idle > 0 and keepalive > 0 and now - self._last_message > idle:  # pinged, never answered
                    await self._close(1001, "Idle timeout: nothing received from the client")
                    return
                if idle > 0 and not self.operations and now - self._last_activity > idle:
                    await self._close(1001, "Idle timeout: no subscription")
                    return
                if reauth > 0 and now - next_reauth >= reauth and (self._reauth is None or self._reauth.done()):
                    next_reauth = now
                    self._reauth = asyncio.create_task(self._still_authenticated(self.view.rechecks.check, reauth))
                if keepalive > 0 and now - last_ping >= keepalive:
                    last_ping = now
                    if self._writer is not None and self._writer.write(PING):
                        continue
                    with suppress(TimeoutError):  # the client is not reading: the idle check above decides
                        await asyncio.wait_for(self.send_message({"type": "ping"}), keepalive)
        except WebSocketDisconnected:
            return

    async def _still_authenticated(self, check: Check, timeout: float | None = None) -> bool:
        """Check the connection's token again (the rule is in the module's docstring)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(timeout):
                await check(self.context.extra.get("credential") or Credential())
        except AuthError as error:
            await self._close(4403, f"Forbidden: {error}")
            return False
        except Exception as error:
            failure = as_unavailable(error)
            reason = failure.reason if failure else "timed out" if isinstance(error, TimeoutError) else None
            if reason is None:
                raise
            unchecked = loop.time() - self._last_auth
            grace = self.view.services.settings.ws_reauth_grace_seconds
            if unchecked > grace:
                log.warning(
                    "closing a WebSocket whose token could not be re-checked for %.0f s (%s)", unchecked, reason
                )
                await self._close(1013, "Try again later: the token could not be re-checked")
                return False
            log.info("could not re-check a WebSocket connection's token (%s); kept for now", reason)
            return True
        self._last_auth = started
        return True

    def _overflowed(self) -> None:
        """The hub dropped one of this connection's subscriptions as too slow: close the connection."""
        if self._dropping is None:
            self._dropping = asyncio.create_task(self._drop(1013, "Try again later: too slow to take the events"))

    async def _drop(self, code: int, reason: str) -> None:
        log.info("%s: closing its WebSocket (%s)", self._client(), reason)
        try:
            await asyncio.wait_for(self._close(code, reason), CLOSE_TIMEOUT)
        except TimeoutError:  # the close frame waits behind data the client never reads
            if (transport := self._transport()) is not None:
                transport.abort()

    def _limit_send_buffer(self, size: int) -> None:
        """Cap what the kernel holds for this client, so a client that stops reading is noticed by its backlog."""
        transport = self._transport()
        sock = transport.get_extra_info("socket") if transport is not None and size > 0 else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def _transport(self) -> asyncio.Transport | None:
        """The connection's transport: asyncio's, or uvloop's (which duck-types it without subclassing)."""
        ws = self._ws()
        transport = ws.scope.get(TRANSPORT) if ws is not None else None
        return transport if hasattr(transport, "abort") and hasattr(transport, "get_extra_info") else None

    async def _close_for(self, error: Exception, where: str) -> None:
        """Close the connection for a failure: 1013 (try again later) when the store is unavailable, else 1011."""
        if (failure := as_unavailable(error)) is not None:
            log.warning("store %s during WebSocket %s", failure.reason, where)
            await self._close(1013, f"Try again later: the store is {failure.reason}")
        else:
            internal_error(error, f"WebSocket {where}")
            await self._close(1011, "Internal error")

    async def _close(self, code: int, reason: str) -> None:
        ws = self._ws()
        if ws is not None and ws.application_state is WebSocketState.DISCONNECTED:
            return
        with suppress(WebSocketDisconnected, RuntimeError):
            await self.websocket.close(code=code, reason=reason)

    def _ws(self) -> WebSocket | None:
        ws = getattr(self.websocket, "ws", None)
        return ws if isinstance(ws, WebSocket) else None

    def _closed_by_client(self) -> bool:
        ws = self._ws()
        return (
            ws is not None
            and ws.client_state is WebSocketState.DISCONNECTED
            and (ws.application_state is not WebSocketState.DISCONNECTED)
        )

    def _client(self) -> str:
        ws = self._ws()
        return f"{ws.client.host}:{ws.client.port}" if ws is not None and ws.client else "a client"


class ExposeTransport:
    """ASGI middleware (outermost): puts a WebSocket's transport in its scope, for the send-buffer cap and for
    dropping a client that never reads. uvicorn's ``send`` is a method of its protocol, which holds the transport;
    the layers below wrap ``send`` and hide it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[TRANSPORT] = getattr(getattr(send, "__self__", None), "transport", None)
        await self.app(scope, receive, send)
