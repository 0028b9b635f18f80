"""Settings, built once from flags and ``FIELDSYNC_*`` environment variables."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.domain.anomalies.thresholds import AnomalyThresholds


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    memory: bool = False  # embedded store only: keep nothing
    data_dir: Path = Path("data")
    mongodb_uri: str | None = None  # unset: start the embedded store
    database: str = "fieldsync"
    admin_token: str | None = None  # bootstrap: an ADMIN holding this token exists
    blocking: str = "queue"  # "queue" or "record": what a FIX_DATA refusal blocks
    outlet_access: str = "scope"  # "scope" or "all": which outlets reps may change and reference
    default_geofence_radius_m: float = 200.0
    max_clock_skew_hours: float = 24  # captures further ahead of the server are refused
    log_db_commands: bool = False  # PyMongo's DEBUG command log shows record contents and token lookups
    token_ttl_days: float = 0  # 0: tokens do not expire
    session_hours: float = 12  # a console sign-in lasts this long
    login_attempts_per_minute: float = 10  # per client address and per name
    login_burst: int = 5
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser; "" = none
    stale_after_hours: float = 24
    backlog_after_hours: float = 24
    retention_days: int = 90
    initial_sync_past_days: float = 7  # an initial sync carries closed visits/work orders this far back
    initial_sync_future_days: float = 14  # ... and this far ahead (open ones always)
    max_changes_per_push: int = 500
    max_body_bytes: int = 8 * 1024 * 1024
    max_crdt_update_bytes: int = 256 * 1024
    max_record_bytes: int = 256 * 1024
    crdt_compact_bytes: int = 4096
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_query_fields: int = 500  # fields an operation selects, fragments expanded (breadth/complexity)
    introspection: bool = True
    graphiql: bool = True
    prepared_operations: bool = True  # pushChanges and pull without GraphQL execution (service/api/prepared.py)
    document_cache_size: int = 2048
    store_timeout_seconds: float = 30  # any one store operation (0: no limit); past it: UNAVAILABLE
    ready_timeout_seconds: float = 5  # /readyz: the store must answer a read and a write within this
    # Requests per token, per device and per client address (unauthenticated), token bucket per process.
    rate_limit_per_minute: float = 1200  # 0: no rate limit
    rate_limit_burst: int = 200
    # WebSocket (graphql-transport-ws) hygiene.
    ws_init_timeout_seconds: float = 10  # connection_init (with a valid token) must arrive in time, else 4408
    ws_max_subscriptions: int = 20  # operations running at once on one connection
    ws_keepalive_seconds: float = 15  # server ping interval; clients answer with pong (0: no pings)
    ws_idle_timeout_seconds: float = 60  # closed (1001) when pings go unanswered, or no operation runs, this long
    ws_max_backlog: int = 1000  # events waiting for one subscriber (> a push's worth); past it: closed (1013)
    ws_send_buffer_bytes: int = 262144  # kernel send buffer per WebSocket (SO_SNDBUF; 0: the kernel's default)
    ws_reauth_seconds: float = 30  # the connection's token is checked again this often (and on every subscribe)
    ws_reauth_grace_seconds: float = 300  # re-checks failing (store unavailable) this long: closed (1013)
    # The photo channel (tus at /files/): its own limits and budget, apart from the pushes'.
    upload_max_bytes: int = 50 * 1024 * 1024
    upload_types: str = "image/jpeg,image/png,image/heic,image/webp,application/pdf"  # by content sniffing
    upload_expire_hours: float = 72  # an unfinished upload untouched this long is deleted
    upload_bytes_per_minute: float = 120 * 1024 * 1024  # per device (0: no limit)
    upload_burst_bytes: int = 8 * 1024 * 1024
    upload_concurrency: int = 4  # uploads at once per device (0: no limit)
    photo_pending_after_hours: float = 24  # a referenced photo not uploaded this long shows in Sync Health
    # Anomaly flags (docs/anomalies.md): each anomaly_<name> is AnomalyThresholds.<name>.
    anomaly_flags: bool = True  # false: pushes flag nothing
    anomaly_max_ground_speed_kmh: float = 200.0
    anomaly_flight_speed_kmh: float = 900.0
    anomaly_flight_overhead_hours: float = 1.5
    anomaly_jump_min_km: float = 3.0
    anomaly_null_island_km: float = 1.0
    anomaly_repeat_memory: int = 50
    anomaly_delay_floor_hours: float = 8.0
    anomaly_delay_mads: float = 4.0
    anomaly_delay_without_baseline_hours: float = 24.0
    anomaly_baseline_min_pushes: int = 5
    anomaly_baseline_pushes: int = 30
    anomaly_queue_growth_days: float = 2.0
    anomaly_duplicate_window_minutes: float = 15.0
    anomaly_clock_skew_minutes: float = 10.0
    anomaly_clock_skew_pushes: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Environment first, then explicit overrides (flags) on top; unknown names are ignored."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(f"FIELDSYNC_{field.name.upper()}")
            if field.name == "mongodb_uri":
                raw = environ.get("MONGODB_URI", raw)
            if raw is not None and raw != "":
                values[field.name] = _parse(raw, field.type)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)


def anomaly_thresholds(settings: Settings) -> AnomalyThresholds | None:
    """The flags' thresholds from their ``anomaly_*`` settings; None when flagging is off."""
    if not settings.anomaly_flags:
        return None
    names = (field.name for field in dataclasses.fields(AnomalyThresholds))
    return AnomalyThresholds(**{name: getattr(settings, f"anomaly_{name}") for name in names})


def _parse(raw: str, kind: Any) -> Any:
    kind = str(kind)
    if kind.startswith("bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    if kind.startswith("Path"):
        return Path(raw)
    return raw
