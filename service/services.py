"""The services a request can reach, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.auth.access import AccessService
from service.auth.sign_in import SignInService

if TYPE_CHECKING:
    from service.api.broadcasts import Broadcasts
    from service.api.rate_limit import RateLimiter
from service.domain.anomaly_service import AnomalyService
from service.domain.sync_service import SyncService
from service.events.hub import EventHub
from service.metrics import Metrics
from service.settings import Settings
from service.store.database import Store
from service.store.health import HealthService
from service.store.identity import KnownUsers
from service.store.sync_repository import MongoSyncRepository
from service.uploads.budget import PushPriority
from service.uploads.channel import UploadChannel


@dataclass
class Services:
    settings: Settings
    store: Store
    sync_repository: MongoSyncRepository
    sync: SyncService
    anomalies: AnomalyService  # flags: list, read, review (pushes flag through ``sync``)
    access: AccessService
    sign_in: SignInService
    health: HealthService
    users: KnownUsers  # users as live feeds show them, each read once
    events: EventHub
    metrics: Metrics
    broadcasts: Broadcasts  # subscriptions asking for the same thing share one execution
    limiter: RateLimiter  # request budgets per token, device and client address
    uploads: UploadChannel  # the photo channel (tus), with its own budget
    priority: PushPriority  # upload bytes wait while GraphQL requests are answered
    login_limiter: RateLimiter  # sign-in attempts per client address and per name
