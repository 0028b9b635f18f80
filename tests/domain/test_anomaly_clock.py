"""CLOCK_SKEW: captures consistently ahead of receipt, or before the version they were made on."""

from datetime import timedelta

from service.domain.anomalies import AnomalyCode, Severity
from service.domain.record_types import RecordType
from tests.domain.flagging import Phone, at
from tests.factories import T0, change, owned

VISIT = RecordType.VISIT


def push_ahead(phone: Phone, n: int, minutes_ahead: float):
    """A push received at T0 + n hours whose newest change says it was captured ``minutes_ahead`` later."""
    received = at(n * 60)
    visit = change(
        VISIT, f"v{n}", {"outletId": "o1", "status": "PLANNED"}, captured_at=received + timedelta(minutes=minutes_ahead)
    )
    return phone.push([visit], received=received)


def test_a_clock_ahead_in_three_pushes_running_is_flagged_once():
    phone = Phone()
    assert [push_ahead(phone, n, 12) for n in range(2)] == [[], []]
    flags = push_ahead(phone, 2, 14)
    assert [(f.code, f.severity) for f in flags] == [(AnomalyCode.CLOCK_SKEW, Severity.LOW)]
    assert flags[0].reason.startswith("This device's clock runs about 12 minutes ahead of the server's")
    assert flags[0].evidence["readings"] == [12.0, 12.0, 14.0]
    assert push_ahead(phone, 3, 13) == []  # still ahead: already flagged
    assert push_ahead(phone, 4, 1) == []  # right again ...
    assert [push_ahead(phone, n, 70) for n in (5, 6)] == [[], []]
    assert [(f.code, f.severity) for f in push_ahead(phone, 7, 70)] == [(AnomalyCode.CLOCK_SKEW, Severity.MEDIUM)]


def test_just_under_the_line_or_one_push_in_between_is_no_skew():
    phone = Phone()
    assert [push_ahead(phone, n, 9.9) for n in range(5)] == [[]] * 5
    phone = Phone()
    assert [push_ahead(phone, n, m) for n, m in enumerate([12, 12, 3, 12, 12])] == [[]] * 5


def test_a_clock_behind_shows_in_changes_made_on_a_version_written_after_their_capture_time():
    phone = Phone()
    flagged = []
    for n in range(3):
        stored = owned(VISIT, f"v{n}", {"outletId": "o1", "status": "PLANNED"})  # written at T0 by the server
        stored = stored.__class__(**{**stored.__dict__, "updated_at": T0 + timedelta(hours=n)})
        edit = change(
            VISIT,
            f"v{n}",
            {"outletId": "o1", "status": "CANCELLED"},
            base_version=1,
            captured_at=T0 + timedelta(hours=n, minutes=-25),
        )
        flagged.append(phone.push([edit], received=T0 + timedelta(hours=n, minutes=5), stored={stored.key: stored}))
    assert [[f.code for f in flags] for flags in flagged] == [[], [], [AnomalyCode.CLOCK_SKEW]]
    assert "25 minutes behind the server's" in flagged[2][0].reason


def test_a_change_made_on_an_older_version_says_nothing_about_the_clock():
    phone = Phone()
    for n in range(4):
        stored = owned(VISIT, f"v{n}", {"outletId": "o1", "status": "PLANNED"}, version=2)
        edit = change(
            VISIT,
            f"v{n}",
            {"outletId": "o1", "status": "CANCELLED"},
            base_version=1,
            captured_at=T0 - timedelta(hours=1),
        )
        assert phone.push([edit], received=T0 + timedelta(hours=n), stored={stored.key: stored}) == []


def test_a_push_that_says_when_it_was_sent_shows_a_clock_behind_or_ahead_directly():
    for minutes, side in ((-30, "behind"), (45, "ahead of")):
        phone = Phone()
        flagged = []
        for n in range(3):
            received = at(n * 60)
            sent = received + timedelta(minutes=minutes, seconds=-2)  # two seconds on the network
            visit = change(VISIT, f"v{n}", {"outletId": "o1", "status": "PLANNED"}, captured_at=sent)
            flagged.append(phone.push([visit], received=received, sent_at=sent))
        assert [[f.code for f in flags] for flags in flagged] == [[], [], [AnomalyCode.CLOCK_SKEW]], side
        assert f"{abs(minutes)} minutes {side} the server's" in flagged[2][0].reason


def test_a_push_sent_a_few_minutes_off_or_with_nothing_in_it_still_reads_the_clock():
    phone = Phone()
    assert [phone.push([], received=at(n), sent_at=at(n - 9)) for n in range(4)] == [[]] * 4  # under the line
    phone = Phone()
    flags = [phone.push([], received=at(n), sent_at=at(n - 20)) for n in range(3)]
    assert [[f.code for f in pushed] for pushed in flags] == [[], [], [AnomalyCode.CLOCK_SKEW]]
    assert flags[2][0].offline_id is None  # the push shows it, not one change
