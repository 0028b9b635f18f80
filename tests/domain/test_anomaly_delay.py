"""SYNC_DELAY against the rep's own pushes, and QUEUE_GROWING with its trend."""

from datetime import UTC, timedelta

from service.domain.anomalies import AnomalyCode, Severity
from service.domain.record_types import RecordType
from tests.domain.flagging import Phone, at
from tests.factories import change

VISIT = RecordType.VISIT
HOUR = 60


def pushed_after(phone: Phone, start_minutes: float, delay_hours: float, **push: object):
    """One change captured at ``start_minutes``, received ``delay_hours`` later."""
    visit = change(VISIT, f"v{start_minutes}", {"outletId": "o1", "status": "PLANNED"}, captured_at=at(start_minutes))
    return phone.push([visit], received=at(start_minutes) + timedelta(hours=delay_hours), **push)  # type: ignore[arg-type]


def learned(delays: list[float]) -> Phone:
    phone = Phone()
    for day, hours in enumerate(delays):
        assert pushed_after(phone, day * 24 * HOUR, hours) == []
    return phone


def test_a_new_rep_without_a_baseline_is_held_to_the_absolute_line():
    phone = Phone()  # no pushes yet: 24 h
    assert pushed_after(phone, 0, 23.9) == []
    flags = pushed_after(phone, 24 * HOUR, 24.1)
    assert [(f.code, f.severity) for f in flags] == [(AnomalyCode.SYNC_DELAY, Severity.HIGH)]
    assert "24.1 h after it was captured" in flags[0].reason
    assert "the 24.0 h line for a rep with fewer than 5 pushes to learn from (it has 1)" in flags[0].reason


def test_a_rep_is_held_to_its_own_baseline_median_plus_mads():
    phone = learned([1, 2, 3, 2, 2, 1, 3])  # median 2 h, MAD 1 h: line 2 + 4 x 1.4826 = 7.93 h, under the 8 h floor
    assert pushed_after(phone, 10 * 24 * HOUR, 7.99) == []
    phone = learned([4, 6, 8, 6, 6, 4, 8])  # median 6 h, MAD 2 h: line 6 + 8 x 1.4826 = 17.86 h
    assert pushed_after(phone, 10 * 24 * HOUR, 17.8) == []
    flags = pushed_after(phone, 11 * 24 * HOUR, 17.9)
    assert [(f.code, f.severity) for f in flags] == [(AnomalyCode.SYNC_DELAY, Severity.MEDIUM)]
    assert "far above this rep's usual 6.0 h (median of its last 8 pushes" in flags[0].reason
    assert flags[0].evidence["lineHours"] == 17.861


def test_the_floor_keeps_a_rep_who_always_syncs_at_once_from_alarms_over_a_lunch_break():
    phone = learned([0.01] * 10)  # MAD 0: the baseline alone would flag any delay
    assert pushed_after(phone, 20 * 24 * HOUR, 7.9) == []
    assert [f.code for f in pushed_after(phone, 21 * 24 * HOUR, 8.1)] == [AnomalyCode.SYNC_DELAY]


def test_a_push_is_flagged_once_for_its_oldest_change_and_a_later_chunk_does_not_flag_it_again():
    phone = Phone()
    old = change(VISIT, "old", {"outletId": "o1", "status": "PLANNED"}, captured_at=at(0))
    new = change(VISIT, "new", {"outletId": "o1", "status": "PLANNED"}, captured_at=at(47 * HOUR))
    flags = phone.push([new, old], received=at(48 * HOUR))
    assert [(f.code, f.record_id) for f in flags] == [(AnomalyCode.SYNC_DELAY, "old")]
    assert phone.baselines.rep.delays == [48.0]


def test_delays_are_instants_so_a_dst_change_in_the_captures_does_not_count():
    from datetime import datetime, timezone

    phone = learned([1.0] * 6)
    # Europe/Berlin, 2026-10-25: 02:59+02:00 (00:59 UTC) and 02:01+01:00 (01:01 UTC); received 08:30 UTC.
    before = datetime(2026, 10, 25, 2, 59, tzinfo=timezone(timedelta(hours=2)))
    after = datetime(2026, 10, 25, 2, 1, tzinfo=timezone(timedelta(hours=1)))
    changes = [
        change(VISIT, "a", {"outletId": "o1", "status": "PLANNED"}, captured_at=before),
        change(VISIT, "b", {"outletId": "o1", "status": "PLANNED"}, captured_at=after),
    ]
    assert phone.push(changes, received=datetime(2026, 10, 25, 8, 30, tzinfo=UTC)) == []  # 7.5 h: under 8
    assert round(phone.baselines.rep.delays[-1], 2) == 7.52  # the oldest: 00:59 UTC, whatever the local clock


def test_a_queue_growing_for_days_is_flagged_once_with_its_trend():
    phone = Phone()
    report = [(0, 12), (HOUR * 20, 30), (HOUR * 47, 50), (HOUR * 48, 60), (HOUR * 60, 70)]
    flagged = [phone.push([], received=at(m), queue_depth=d) for m, d in report]
    assert [[f.code for f in flags] for flags in flagged] == [[], [], [], [AnomalyCode.QUEUE_GROWING], []]
    flag = flagged[3][0]
    assert flag.reason.startswith("This device's queue has not gone down for 2.0 days (line 2): from 12 changes")
    assert "to 60 now (+24.0 a day)" in flag.reason
    assert flag.record_id is None and flag.severity is Severity.MEDIUM


def test_a_queue_that_goes_down_starts_again_and_a_flat_one_is_not_growing():
    phone = Phone()
    for minutes, depth in [(0, 10), (HOUR * 30, 20), (HOUR * 31, 5), (HOUR * 60, 9)]:
        assert phone.push([], received=at(minutes), queue_depth=depth) == []  # went down at 31 h
    phone = Phone()
    for minutes in (0, HOUR * 24, HOUR * 49):
        assert phone.push([], received=at(minutes), queue_depth=7) == []  # stuck, not growing
