"""Device health: open problems first, then a backlog, then silence."""

from datetime import timedelta

from service.domain.health import HealthStatus, HealthThresholds, device_health, worst
from tests.factories import T0

DAY = timedelta(hours=24)


def health(last_sync=T0, growing_since=None, problems=0, now=T0 + timedelta(hours=1)):
    return device_health(
        last_sync_at=last_sync,
        queue_growing_since=growing_since,
        registered_at=T0 - 10 * DAY,
        open_problems=problems,
        now=now,
        thresholds=HealthThresholds(),
    )


def test_a_device_that_synced_recently_with_nothing_open_is_healthy():
    assert health() is HealthStatus.HEALTHY


def test_open_refusals_or_conflicts_need_attention_first():
    assert health(problems=1, growing_since=T0 - 3 * DAY, last_sync=T0 - 3 * DAY) is HealthStatus.NEEDS_ATTENTION


def test_a_queue_that_has_not_gone_down_for_a_day_is_a_backlog_even_while_syncing():
    assert health(growing_since=T0 - DAY) is HealthStatus.BACKLOGGED
    assert health(growing_since=T0 - DAY + timedelta(hours=2)) is HealthStatus.HEALTHY


def test_no_sync_for_a_day_is_stale_and_never_synced_counts_from_registration():
    assert health(last_sync=T0 - DAY) is HealthStatus.STALE
    assert health(last_sync=None) is HealthStatus.STALE


def test_a_rep_is_as_unhealthy_as_its_worst_device():
    assert worst([HealthStatus.STALE, HealthStatus.BACKLOGGED, HealthStatus.HEALTHY]) is HealthStatus.BACKLOGGED
    assert worst([]) is HealthStatus.HEALTHY
