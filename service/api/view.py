"""The GraphQL endpoint: who is calling, how often, and what the WebSocket transport tolerates.

HTTP: each request is authenticated from its bearer token once, rate limited per token,
per device and (without a valid token) per client address, then executed. Transport
errors are GraphQL-style JSON. WebSocket (graphql-transport-ws): the token comes in the
``connection_init`` payload and is checked again on every subscribe and periodically;
the server pings, and closes connections that stay silent or idle.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType

from service.api.context import Context
from service.api.errors import error_response, failure_response, http_status, internal_error
from service.api.push_refusals import record_push_refusal, record_rejected_request
from service.api.rate_limit import budget_key, retry_after
from service.auth.access import AuthError
from service.auth.roles import Principal
from service.auth.tokens import bearer
from service.request_limits import BodyTooLarge, strict_json
from service.services import Services
from service.store.unavailable import as_unavailable

log = logging.getLogger("fieldsync.api")

HTTP_OPERATIONS = {"POST": {OperationType.QUERY, OperationType.MUTATION}, "GET": set()}
HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}  # other 4xx: BAD_REQUEST


@dataclass(frozen=True)
class Credential:
    """A bearer token kept for re-checking a WebSocket connection; never shown in reprs or logs."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class Admission:
    """The outcome of authenticating a request's token (none: no token)."""

    principal: Principal | None = None
    failure: AuthError | None = None

    def apply(self, context: Context) -> None:
        context.principal = self.principal
        context.auth_failure = self.failure
        context.auth_error = str(self.failure) if self.failure else None


def rate_limited(seconds: float) -> Response:
    wait = retry_after(seconds)
    return error_response(
        429, f"too many requests; retry in {wait} s", "RATE_LIMITED", headers={"Retry-After": str(wait)}
    )


class FieldSyncTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with keep-alive pings, idle close and token re-checks."""

    view: FieldSyncGraphQL

    async def handle(self) -> None:
        now = asyncio.get_running_loop().time()
        self._last_message = self._last_activity = self._last_auth = now
        watchdog = asyncio.create_task(self._watch())
        try:
            await super().handle()
        finally:
            watchdog.cancel()
            with suppress(asyncio.CancelledError):
                await watchdog

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
            payload = message.get("payload")
            token = _token_in(payload)
            wait = self.view.limiter.take(budget_key(token, self.context.extra.get("client")))
            if wait:
                self.connection_init_received = True  # the init timeout has nothing left to do
                await self._close(4429, f"Too many requests; retry in {retry_after(wait)} s")
                return
        try:
            await super().handle_connection_init(message)
        except Exception as error:  # the token could not be checked
            await self._close_for(error, "connection_init")

    async def _close_for(self, error: Exception, where: str) -> None:
        """Close the connection for a failure: 1013 (try again later) when the store is unavailable, else 1011."""
        if (failure := as_unavailable(error)) is not None:
            log.warning("store %s during WebSocket %s", failure.reason, where)
            await self._close(1013, f"Try again later: the store is {failure.reason}")
        else:
            internal_error(error, f"WebSocket {where}")
            await self._close(1011, "Internal error")

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
            if not await self._still_authenticated():
                return
            credential = self.context.extra.get("credential")
            wait = self.view.limiter.take(budget_key(credential.token if credential else None, None))
            if wait:  # a subscribe spends the token's budget like a request does
                error = GraphQLError(
                    f"too many requests; retry in {retry_after(wait)} s", extensions={"code": "RATE_LIMITED"}
                )
                await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
                return
        await super().handle_subscribe(message)

    async def _watch(self) -> None:
        settings = self.view.services.settings
        keepalive, idle = settings.ws_keepalive_seconds, settings.ws_idle_timeout_seconds
        reauth = settings.ws_reauth_seconds
        tick = max(0.05, min([v for v in (keepalive, idle, reauth) if v > 0] or [4.0]) / 4)
        loop = asyncio.get_running_loop()
        last_ping = loop.time()
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
                if reauth > 0 and now - self._last_auth >= reauth and not await self._still_authenticated():
                    return
                if keepalive > 0 and now - last_ping >= keepalive:
                    last_ping = now
                    await self.send_message({"type": "ping"})
        except WebSocketDisconnected:
            return

    async def _still_authenticated(self) -> bool:
        """Check the connection's token again; a revoked or expired token closes the connection (4403)."""
        self._last_auth = asyncio.get_running_loop().time()
        credential = self.context.extra.get("credential")
        try:
            await self.view.services.access.authenticate(credential.token if credential else None)
        except AuthError as error:
            await self._close(4403, f"Forbidden: {error}")
            return False
        except Exception as error:  # store unavailable: keep the connection, check again later
            log.warning("could not re-check a WebSocket connection's token (%s)", type(error).__name__)
        return True

    async def _close(self, code: int, reason: str) -> None:
        ws = getattr(self.websocket, "ws", None)
        if isinstance(ws, WebSocket) and ws.application_state is WebSocketState.DISCONNECTED:
            return
        with suppress(WebSocketDisconnected, RuntimeError):
            await self.websocket.close(code=code, reason=reason)


class FieldSyncGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = FieldSyncTransportWS

    def __init__(self, services: Services, schema: Any) -> None:
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
        )
        self.services = services
        self.limiter = services.limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response = await self._admit(request) or await self.run(request)
        except HTTPException as error:
            response = error_response(error.status_code, error.reason, HTTP_CODES.get(error.status_code, "BAD_REQUEST"))
            if error.status_code == 400:
                await self._record_bad_push(request, error.reason)
        except BodyTooLarge:
            raise  # answered 413 by the BodySizeLimit middleware
        except ClientDisconnect:
            _client_gone(request, "before its request was read")
            return
        except Exception as error:
            response = failure_response(error, f"{request.method} {request.url.path}")
        await response(scope, receive, send)

    async def _record_bad_push(self, request: Request, reason: str) -> None:
        """A malformed push is a push refusal; failing to record it must not change the answer."""
        try:
            if b"pushChanges" in await request.body():
                authorization = request.headers.get("authorization")
                await record_rejected_request(self.services, authorization, error_code="BAD_REQUEST", message=reason)
        except Exception as error:
            log.warning("could not record a push refusal (%s)", type(error).__name__)

    async def _admit(self, request: Request) -> Response | None:
        """Authenticate once and spend the caller's budgets; a response when the request is turned away."""
        token = bearer(request.headers.get("authorization"))
        client = request.client.host if request.client else None
        if wait := self.limiter.take(budget_key(token, client)):
            return rate_limited(wait)
        admission = await self._authenticate(token) if token else Admission()
        request.state.fieldsync_admission = admission
        principal = admission.principal
        if principal is not None and principal.device_id is not None:
            if wait := self.limiter.take(f"device:{principal.device_id}"):
                return rate_limited(wait)
        elif token and principal is None and (wait := self.limiter.take(budget_key(None, client))):
            return rate_limited(wait)  # bad tokens also spend the client address's budget
        return None

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        context = Context(services=self.services, principal=None)
        if isinstance(request, Request):
            admission = getattr(request.state, "fieldsync_admission", None) or Admission()
            admission.apply(context)
        else:
            context.extra["client"] = request.client.host if request.client else None
        return context

    async def on_ws_connect(self, context: Context) -> Any:
        token = _token_in(context.connection_params)
        admission = await self._authenticate(token) if token else Admission()
        admission.apply(context)
        if context.principal is None:
            raise ConnectionRejectionError({"message": context.auth_error or "authentication required"})
        context.extra["credential"] = Credential(token or "")
        return {"role": context.principal.role.value}

    async def _authenticate(self, token: str) -> Admission:
        try:
            return Admission(principal=await self.services.access.authenticate(token))
        except AuthError as error:
            return Admission(failure=error)

    def decode_json(self, data: str | bytes) -> object:
        return strict_json(data)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            parsed = strict_json(data)
        except ValueError as error:
            reason = getattr(error, "msg", str(error))
            raise HTTPException(400, f"the request body is not acceptable JSON: {reason}") from None
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "the request body must be a JSON object: {query, variables, operationName}")
        return parsed

    async def execute_single(  # type: ignore[override]
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Context,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        """Queries and mutations over POST only: subscriptions are served over WebSocket."""
        try:
            result = await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=HTTP_OPERATIONS.get(request_adapter.method, set()),
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from None
        except InvalidOperationTypeError as error:
            reason = error.as_http_error_reason(request_adapter.method)
            if error.operation_type is OperationType.SUBSCRIPTION:
                reason += f"; subscribe over WebSocket ({GRAPHQL_TRANSPORT_WS_PROTOCOL})"
            raise HTTPException(400, reason) from None
        except MissingQueryError:
            raise HTTPException(400, "No GraphQL query found in the request") from None
        errors = result.errors or []
        request_level = result.data is None and errors and all(error.path is None for error in errors)
        if request_level and "pushChanges" in (request_data.query or ""):  # variables that do not fit the schema
            await record_push_refusal(
                self.services,
                principal=context.principal,
                failure=context.auth_failure,
                error_code="BAD_REQUEST",
                message=errors[0].message,
            )
        status, headers = http_status(errors, has_data=result.data is not None)
        if status != 200:  # a retryable failure is 503 with Retry-After; a failed operation 500
            sub_response.status_code = status
            sub_response.headers.update(headers)
        return result


def _client_gone(request: Request, when: str) -> None:
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    log.info("%s disconnected %s (%s %s)", client, when, request.method, request.url.path)


def _token_in(payload: object) -> str | None:
    value = payload.get("authorization") if isinstance(payload, dict) else None
    return bearer(value) if isinstance(value, str) else None
