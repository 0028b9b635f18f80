"""The lines anomaly flags are drawn at (``FIELDSYNC_ANOMALY_*`` settings), with their defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnomalyThresholds:
    # GEO_JUMP: a move is plausible by road (ground speed) or by air (overhead + flying time).
    max_ground_speed_kmh: float = 200.0
    flight_speed_kmh: float = 900.0
    flight_overhead_hours: float = 1.5  # to, through and from airports
    jump_min_km: float = 3.0  # closer stamps are GPS noise, whatever the speed
    null_island_km: float = 1.0  # GEO_NULL_ISLAND: a stamp this close to 0, 0
    repeat_memory: int = 50  # GEO_REPEATED: a device's recent distinct stamps kept to compare
    # SYNC_DELAY: per push, the oldest change's capture-to-receipt delay against the rep's own pushes.
    delay_floor_hours: float = 8.0  # never flagged below this
    delay_mads: float = 4.0  # ... nor below median + this many (scaled) MADs of the rep's baseline
    delay_without_baseline_hours: float = 24.0  # the line for a rep with too short a history
    baseline_min_pushes: int = 5  # pushes a baseline needs before it is trusted
    baseline_pushes: int = 30  # pushes a baseline keeps (the most recent)
    # QUEUE_GROWING: the reported queue has not gone down for this long, and is larger.
    queue_growth_days: float = 2.0
    # CONTENT_DUPLICATE: same rep, outlet and order lines under another offlineId within this window.
    duplicate_window_minutes: float = 15.0
    # CLOCK_SKEW: captures ahead of receipt (or before a version they were made on) by this much ...
    clock_skew_minutes: float = 10.0
    clock_skew_pushes: int = 3  # ... in each of this many consecutive pushes
