"""The GraphQL endpoint: who is calling, how often, and what the WebSocket transport tolerates.

HTTP: each request is authenticated once, from its bearer token or its session cookie
with the CSRF header (``service/api/credentials.py``), rate limited per token or session,
per device and (without a valid token) per client address, then executed. Transport
errors are GraphQL-style JSON. WebSocket (graphql-transport-ws): the token comes in the
``connection_init`` payload and is checked again on every subscribe and periodically;
the server pings, and closes connections that stay silent or idle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType

from service.api.context import Context
from service.api.credentials import Credential, authenticate
from service.api.errors import error_response, failure_response, http_status
from service.api.prepared import PreparedOperations
from service.api.push_refusals import record_push_refusal, record_rejected_request
from service.api.rate_limit import budget_key, retry_after
from service.api.rechecks import CHECKS_PER_INTERVAL, SharedRechecks
from service.api.websocket import FieldSyncTransportWS
from service.auth.access import AuthError
from service.auth.roles import Principal
from service.request_limits import BodyTooLarge, strict_json
from service.services import Services

log = logging.getLogger("fieldsync.api")

GRAPHIQL_PAGE = Path(__file__).parents[1] / "web" / "static" / "graphiql.html"
HTTP_OPERATIONS = {"POST": {OperationType.QUERY, OperationType.MUTATION}, "GET": set()}
# Prepared fields that confirm a remembered token themselves (``sequence``): a push when its commit takes its
# numbers, a pull with its first read, of the sequence's head.
SELF_CONFIRMING = {"pushChanges", "pull"}
HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}  # other 4xx: BAD_REQUEST


@dataclass(frozen=True)
class Admission:
    """The outcome of authenticating a request's token (none: no token)."""

    principal: Principal | None = None
    failure: AuthError | None = None
    credential: Credential | None = None
    revocations_seen: int | None = None  # remembered: the epoch to confirm (``Context.confirm``)

    def apply(self, context: Context) -> None:
        context.principal = self.principal
        context.auth_failure = self.failure
        context.auth_error = str(self.failure) if self.failure else None
        context.credential = self.credential
        context.revocations_seen = self.revocations_seen


def rate_limited(seconds: float) -> Response:
    wait = retry_after(seconds)
    return error_response(
        429, f"too many requests; retry in {wait} s", "RATE_LIMITED", headers={"Retry-After": str(wait)}
    )


class FieldSyncGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = FieldSyncTransportWS

    def __init__(self, services: Services, schema: Any, prepared: PreparedOperations | None = None) -> None:
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
        self.prepared = prepared
        self.rechecks = SharedRechecks(
            partial(authenticate, services), settings.ws_reauth_seconds / CHECKS_PER_INTERVAL
        )

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
        credential = Credential.of_request(request)
        client = request.client.host if request.client else None
        if wait := self.limiter.take(credential.budget(client)):
            return rate_limited(wait)
        admission = await self._authenticate(credential, remembered=True)
        request.state.fieldsync_admission = admission
        principal = admission.principal
        if principal is not None and principal.device_id is not None:
            if wait := self.limiter.take(f"device:{principal.device_id}"):
                return rate_limited(wait)
        elif credential.presented and principal is None and (wait := self.limiter.take(budget_key(None, client))):
            return rate_limited(wait)  # bad tokens also spend the client address's budget
        return None

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        context = Context(services=self.services, principal=None)
        if isinstance(request, Request):
            admission = getattr(request.state, "fieldsync_admission", None) or Admission()
            admission.apply(context)
        else:
            context.extra["client"] = request.client.host if request.client else None
            context.extra["connection"] = request
        return context

    async def on_ws_connect(self, context: Context) -> Any:
        credential = Credential.of_connection_init(context.extra["connection"], context.connection_params)
        admission = await self._authenticate(credential)
        admission.apply(context)
        if context.principal is None:
            raise ConnectionRejectionError({"message": context.auth_error or "authentication required"})
        context.extra["credential"] = credential
        return {"role": context.principal.role.value}

    async def _authenticate(self, credential: Credential, *, remembered: bool = False) -> Admission:
        """``remembered``: a remembered token is admitted with no read, its epoch confirmed later."""
        if not credential.presented:
            return Admission()
        if remembered and credential.token and (known := self.services.access.remembered(credential.token)):
            return Admission(known.principal, credential=credential, revocations_seen=known.epoch)
        try:
            return Admission(principal=await authenticate(self.services, credential))
        except AuthError as error:
            return Admission(failure=error)

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL from the package's vendored files: it works with no internet."""
        return GRAPHIQL_PAGE.read_text()

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
        """Queries and mutations over POST only: subscriptions are served over WebSocket.

        A prepared operation (``service/api/prepared.py``) answers the hot documents once the
        general path has validated them; anything it does not cover goes the general way.
        """
        prepared = self.prepared.get(request_data.query, request_data.operation_name) if self.prepared else None
        result = None
        if prepared is not None and request_adapter.method == "POST":
            if prepared.field.name.value not in SELF_CONFIRMING:
                await context.confirm()
            result = await prepared.execute(context, request_data.variables)
        if result is None:
            await context.confirm()
            result = await self._execute(request_adapter, context, root_value, request_data)
        status, headers = http_status(result.errors or [], has_data=result.data is not None)
        if status != 200:  # a retryable failure is 503 with Retry-After; a failed operation 500
            sub_response.status_code = status
            sub_response.headers.update(headers)
        return result

    async def _execute(
        self, request_adapter: Any, context: Context, root_value: Any, request_data: Any
    ) -> ExecutionResult:
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
        elif self.prepared is not None and not request_level:  # validated: executed, or failed in a field
            self.prepared.learn(request_data.query)
        return result


def _client_gone(request: Request, when: str) -> None:
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    log.info("%s disconnected %s (%s %s)", client, when, request.method, request.url.path)
