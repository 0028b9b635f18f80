"""The composition root: settings -> store -> domain -> api -> Starlette app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import files
from service.api import sign_in as sign_in_routes
from service.api.broadcasts import Broadcasts
from service.api.export import export_history
from service.api.prepared import PreparedOperations
from service.api.rate_limit import RateLimiter
from service.api.schema import build_schema
from service.api.view import FieldSyncGraphQL
from service.api.websocket import ExposeTransport
from service.auth.access import AccessService
from service.auth.sign_in import SignInService
from service.domain.anomaly_service import AnomalyService
from service.domain.document_cache import DocumentCache
from service.domain.health import HealthThresholds
from service.domain.initial_sync import InitialWindow
from service.domain.push_plan import BlockingMode
from service.domain.rules import RuleSettings
from service.domain.scope import OutletAccess
from service.domain.sync_service import SyncService, SyncSettings
from service.events.follower import Follower
from service.events.hub import EventHub
from service.metrics import Metrics
from service.request_limits import BodySizeLimit
from service.services import Services
from service.settings import Settings, anomaly_thresholds
from service.store import (
    anomalies,
    anomaly_baselines,
    conflicts,
    crdt_archives,
    history,
    identity,
    readiness,
    receipts,
    records,
    refusals,
    scope_exits,
    sequence,
    sign_in,
    transactions,
)
from service.store.database import Store, connect, ensure_indexes
from service.store.embedded import EmbeddedStore, start_embedded_store, supervise
from service.store.health import HealthService
from service.store.identity import KnownUsers
from service.store.sync_repository import MongoSyncRepository
from service.uploads import photo_refs, storage, thumbnails
from service.uploads.budget import PushPriority, UploadBudget
from service.uploads.channel import UploadChannel
from service.uploads.expiry import ExpirySweeper
from service.uploads.protocol import UploadRules

log = logging.getLogger("fieldsync")


# Indexes earlier versions declared that no query shape reads (docs/query-shapes.md): each write paid for them.
RETIRED_INDEXES = {records.COLLECTION: ["seq"], history.COLLECTION: ["sync"]}


def declared_indexes(settings: Settings) -> dict[str, list]:
    return {
        records.COLLECTION: records.INDEXES,
        crdt_archives.COLLECTION: crdt_archives.INDEXES,
        receipts.COLLECTION: receipts.INDEXES,
        conflicts.COLLECTION: conflicts.INDEXES,
        refusals.COLLECTION: refusals.INDEXES,
        anomalies.COLLECTION: anomalies.INDEXES,
        anomaly_baselines.COLLECTION: [],
        scope_exits.COLLECTION: scope_exits.INDEXES,
        transactions.COLLECTION: transactions.INDEXES,
        sequence.COLLECTION: sequence.INDEXES,
        **identity.INDEXES,
        **sign_in.INDEXES,
        **history.indexes(settings.retention_days),
        **storage.INDEXES,
        photo_refs.COLLECTION: photo_refs.INDEXES,
        thumbnails.COLLECTION: [],
    }


def build_services(settings: Settings, store: Store) -> Services:
    hub = EventHub(backlog=settings.ws_max_backlog)
    repository = MongoSyncRepository(store)
    sync_settings = SyncSettings(
        rules=RuleSettings(
            default_geofence_radius_m=settings.default_geofence_radius_m,
            max_record_bytes=settings.max_record_bytes,
            crdt_compact_bytes=settings.crdt_compact_bytes,
            max_crdt_update_bytes=settings.max_crdt_update_bytes,
            max_clock_skew=timedelta(hours=settings.max_clock_skew_hours),
        ),
        blocking=BlockingMode(settings.blocking),
        initial_window=InitialWindow(
            past=timedelta(days=settings.initial_sync_past_days),
            future=timedelta(days=settings.initial_sync_future_days),
        ),
        outlet_access=OutletAccess(settings.outlet_access),
        anomalies=anomaly_thresholds(settings),
    )
    metrics = Metrics()
    priority = PushPriority()
    services = Services(
        settings=settings,
        store=store,
        sync_repository=repository,
        sync=SyncService(
            repository,
            sync_settings,
            documents=DocumentCache(settings.document_cache_size),
            publish=hub.publish_committed,
        ),
        anomalies=AnomalyService(repository, publish=hub.publish_committed),
        access=AccessService(
            store, token_ttl=timedelta(days=settings.token_ttl_days) if settings.token_ttl_days else None
        ),
        sign_in=SignInService(store, session_ttl=timedelta(hours=settings.session_hours)),
        health=HealthService(
            store,
            HealthThresholds(
                stale_after=timedelta(hours=settings.stale_after_hours),
                backlog_after=timedelta(hours=settings.backlog_after_hours),
                photo_pending_after=timedelta(hours=settings.photo_pending_after_hours),
            ),
        ),
        users=KnownUsers(store),
        events=hub,
        metrics=metrics,
        limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        uploads=UploadChannel(
            store,
            rules=UploadRules(
                max_bytes=settings.upload_max_bytes,
                allowed_types=frozenset(t.strip() for t in settings.upload_types.split(",") if t.strip()),
            ),
            expire_after=timedelta(hours=settings.upload_expire_hours),
            budget=UploadBudget(
                bytes_per_minute=settings.upload_bytes_per_minute,
                burst_bytes=settings.upload_burst_bytes,
                concurrent=settings.upload_concurrency,
                requests_per_minute=settings.rate_limit_per_minute,
                burst=settings.rate_limit_burst,
            ),
            priority=priority,
            transaction=repository.in_transaction,
            clock=lambda: datetime.now(UTC),
        ),
        priority=priority,
        broadcasts=Broadcasts(settings.ws_max_backlog),
        login_limiter=RateLimiter(settings.login_attempts_per_minute, settings.login_burst),
    )
    hub.on_token_revoked.append(services.broadcasts.token_revoked)  # shared feeds end a revoked token's followers
    metrics.gauges["fieldsync_changes_committed_total"] = lambda: services.sync.committed_changes
    metrics.gauges["fieldsync_subscribers"] = lambda: services.broadcasts.follower_count
    metrics.gauges["fieldsync_subscription_executions"] = lambda: hub.subscriber_count
    metrics.gauges["fieldsync_events_delivered_total"] = lambda: hub.delivered
    metrics.gauges["fieldsync_subscribers_dropped_slow_total"] = lambda: hub.dropped_slow
    metrics.gauges["fieldsync_frames_written_direct_total"] = lambda: services.broadcasts.deliveries.direct
    metrics.gauges["fieldsync_frames_queued_total"] = lambda: services.broadcasts.deliveries.queued
    metrics.gauges["fieldsync_document_cache_hits"] = lambda: services.sync.documents.hits
    metrics.gauges["fieldsync_document_cache_misses"] = lambda: services.sync.documents.misses
    metrics.gauges["fieldsync_upload_wait_seconds"] = lambda: priority.waited_seconds
    return services


def announce_first_admin(settings: Settings, password: str) -> None:
    """Said once, on the start that created the first ADMIN; never logged again."""
    print(
        "\nFieldSync first run: no admin existed, so one was created.\n"
        f"  Sign in at http://{settings.host}:{settings.port}/ as: admin\n"
        f"  password: {password}\n"
        "  This password is shown only now: change it in the console (Account).\n",
        file=sys.stderr,
        flush=True,
    )


def create_app(settings: Settings) -> Starlette:
    state: dict[str, object] = {}
    if not settings.log_db_commands:
        logging.getLogger("pymongo.command").setLevel(logging.INFO)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        embedded: EmbeddedStore | None = None
        uri = settings.mongodb_uri
        if uri is None:
            embedded = start_embedded_store(None if settings.memory else settings.data_dir)
            uri = embedded.uri
            where = "in memory" if settings.memory else f"in {settings.data_dir}"
            log.warning("FieldSync: using the embedded MongoDB-compatible store %s at %s", where, uri)
        store = connect(
            uri,
            settings.database,
            embedded=embedded is not None or settings.memory,
            timeout=settings.store_timeout_seconds,
            serialize_transactions=settings.memory,
        )
        try:
            await ensure_indexes(store, declared_indexes(settings), RETIRED_INDEXES)
            services = build_services(settings, store)

            async def prepared() -> None:  # at start-up, and again when a restarted embedded store is empty
                await ensure_indexes(store, declared_indexes(settings), RETIRED_INDEXES)
                if settings.admin_token:
                    await services.access.ensure_admin(settings.admin_token)

            await prepared()
            if password := await services.sign_in.first_admin():
                announce_first_admin(settings, password)
            if embedded is not None:  # told where each commit moved the head: no polling of an idle store
                follower = Follower(store, services.events, told=True, poll_interval=5.0)

                def moved(database: str, head: int) -> None:
                    if database == settings.database:  # other databases on that store are not this service's
                        follower.moved(head)

                embedded.listen(moved)
            else:
                follower = Follower(store, services.events)
            await follower.start()
            sweeper = ExpirySweeper(services.uploads)
            sweeper.start()
            state["services"] = services
            graphql.services = services
            gc.freeze()  # what start-up built (modules, schema) lives as long as the process: no full GC walks it
            supervisor = asyncio.create_task(supervise(embedded, prepared)) if embedded is not None else None
            try:
                yield
            finally:
                await sweeper.stop()
                if supervisor is not None:
                    supervisor.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await supervisor
                await follower.stop()
                await services.events.close()
        finally:
            await store.close()
            if embedded is not None:
                embedded.stop()

    graphql = _LazyGraphQL(settings)
    state["prepared"] = graphql.prepared

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        services = state.get("services")
        if not isinstance(services, Services):
            return JSONResponse({"status": "starting"}, status_code=503)
        problem = await readiness.check(services.store, settings.ready_timeout_seconds)
        if problem is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "store": problem}, status_code=503)

    async def metrics(request: Request) -> Response:
        services = state.get("services")
        body = services.metrics.render() if isinstance(services, Services) else ""
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            # every method: the view answers those it refuses in GraphQL JSON
            Route("/graphql", _PushesFirst(graphql, state)),
            WebSocketRoute("/graphql", graphql),
            Route("/export/history.ndjson", export_history),
            *files.routes(),
            Route("/auth/login", sign_in_routes.login, methods=["POST"]),
            Route("/auth/session", sign_in_routes.current_session),
            Route("/auth/logout", sign_in_routes.logout, methods=["POST"]),
            *_web_routes(),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, exempt=(files.PREFIX,))
    if origins := [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]:
        # Bearer tokens only: no credentials mode, so a session cookie never rides a cross-origin call.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(ExposeTransport)  # outermost
    app.state.fieldsync = state
    return app


class _LazyGraphQL:
    """The GraphQL endpoint, whose services exist once the lifespan has started."""

    def __init__(self, settings: Settings) -> None:
        self._schema = build_schema(settings)
        self.prepared = PreparedOperations(self._schema._schema) if settings.prepared_operations else None
        self._view: FieldSyncGraphQL | None = None
        self.services: Services | None = None

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if self._view is None:
            assert self.services is not None, "the app has not started"
            self._view = FieldSyncGraphQL(self.services, self._schema, self.prepared)
        await self._view(scope, receive, send)


class _PushesFirst:
    """GraphQL over HTTP (pushes, pulls) goes before upload bytes: they wait while it is answered."""

    def __init__(self, endpoint: ASGIApp, state: dict[str, object]) -> None:
        self._endpoint = endpoint
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = self._state.get("services")
        if not isinstance(services, Services):
            await self._endpoint(scope, receive, send)
            return
        async with services.priority.request():
            await self._endpoint(scope, receive, send)


def _web_routes() -> list[Route | Mount]:
    from service.web.routes import routes

    return routes()
