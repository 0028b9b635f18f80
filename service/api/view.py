"""The GraphQL endpoint: builds each request's context from its bearer token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from service.api.context import Context
from service.auth.access import AuthError
from service.auth.tokens import bearer
from service.services import Services


class FieldSyncGraphQL(GraphQL[Context, None]):
    def __init__(self, services: Services, schema: Any) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if services.settings.graphiql else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=20,
        )
        self.services = services

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        context = Context(services=self.services, principal=None)
        if isinstance(request, Request):
            await self._authenticate(context, bearer(request.headers.get("authorization")))
        return context

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.extra.get("connection_params") or {}
        token = bearer(params.get("authorization") if isinstance(params, dict) else None)
        await self._authenticate(context, token)
        if context.principal is None:
            raise ConnectionRejectionError({"message": context.auth_error or "authentication required"})
        return {"role": context.principal.role.value}

    async def _authenticate(self, context: Context, token: str | None) -> None:
        if token is None:
            return
        try:
            context.principal = await self.services.access.authenticate(token)
        except AuthError as error:
            context.auth_error = str(error)
            context.auth_failure = error
