"""The daily report's pure core: which UTC instants a local day spans, and how the counts add up."""

from datetime import UTC, date, datetime

import pytest

from service.domain.report import (
    ACTIONS,
    ActionTally,
    DeviceRegistration,
    UnknownTimezone,
    build_report,
    day_window,
    label,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "zone", "start", "end", "hours"),
    [
        (date(2026, 3, 8), "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23),  # spring forward
        (date(2026, 11, 1), "America/New_York", utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25),  # fall back
        (date(2026, 3, 29), "Europe/Berlin", utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23),
        (date(2026, 10, 25), "Europe/Berlin", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25),
        (date(2026, 11, 20), "Asia/Kuala_Lumpur", utc(2026, 11, 19, 16), utc(2026, 11, 20, 16), 24),
        (date(2026, 11, 20), "UTC", utc(2026, 11, 20), utc(2026, 11, 21), 24),
        (date(2026, 4, 5), "Australia/Lord_Howe", utc(2026, 4, 4, 13), utc(2026, 4, 5, 13, 30), 24.5),  # 30 min DST
    ],
)
def test_a_local_day_is_23_24_or_25_hours_of_utc(day, zone, start, end, hours):
    window = day_window(day, zone)
    assert (window.start, window.end, window.hours) == (start, end, hours)


def test_a_midnight_that_does_not_exist_starts_the_day_at_the_transition():
    # Chile springs forward at 24:00 -> 01:00: 2026-09-06 has no local midnight.
    window = day_window(date(2026, 9, 6), "America/Santiago")
    assert window.start == utc(2026, 9, 6, 4)  # 00:00 at -04 == 01:00 at -03
    assert window.hours == 23


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "America", "localtime"]
)
def test_unknown_timezones_are_refused_with_a_clear_message(name):
    with pytest.raises(UnknownTimezone, match="unknown timezone"):
        day_window(date(2026, 11, 20), name)


def test_a_miscapitalised_timezone_gets_a_suggestion():
    with pytest.raises(UnknownTimezone, match="did you mean 'America/New_York'"):
        day_window(date(2026, 11, 20), "america/new_york")


def test_every_action_has_a_sync_report_label():
    assert label("UNCHANGED") == "No difference"
    assert label("DUPLICATE") == "No new changes"
    assert label("CONFLICT") == "Field conflict"
    assert label("REFUSED") == "Validation error"
    assert label("BLOCKED") == "Deferred"
    assert label("PUSH_REFUSED") == "Unable to update"
    assert all(label(action) != action for action in ACTIONS)


def test_the_report_counts_per_action_in_total_and_per_rep():
    window = day_window(date(2026, 11, 20), "UTC")
    tallies = [
        ActionTally("ali", "APPLIED", 5),
        ActionTally("ali", "DUPLICATE", 2),
        ActionTally("ali", "PUSH", 2),
        ActionTally("siti", "REFUSED", 1),
        ActionTally("siti", "PUSH", 1),
        ActionTally(None, "RECORD_WRITTEN", 3),  # a manager on the web: in the total, under no rep
    ]
    report = build_report(window, tallies, [("ali-phone", "ali"), ("siti-phone", "siti")], [])
    totals = {count.action: count.count for count in report.actions}
    assert [count.action for count in report.actions] == list(ACTIONS)  # every action, zeros included
    assert (totals["APPLIED"], totals["PUSH"], totals["RECORD_WRITTEN"], totals["CONFLICT"]) == (5, 3, 3, 0)
    assert report.total == 14
    ali, siti = report.reps
    assert (ali.rep_id, ali.total, [(c.action, c.count) for c in ali.actions]) == (
        "ali",
        9,
        [("APPLIED", 5), ("DUPLICATE", 2), ("PUSH", 2)],
    )
    assert (siti.rep_id, siti.total, siti.devices_synced) == ("siti", 2, ("siti-phone",))
    assert report.devices_synced == ("ali-phone", "siti-phone")


def test_silent_devices_are_those_expected_to_sync_that_did_not():
    window = day_window(date(2026, 11, 20), "Asia/Kuala_Lumpur")  # [11-19 16:00Z, 11-20 16:00Z)
    devices = [
        DeviceRegistration("ali-phone", "ali", registered_at=utc(2026, 10, 1)),  # pushed
        DeviceRegistration("ali-tablet", "ali", registered_at=utc(2026, 10, 1)),  # silent
        DeviceRegistration("siti-phone", "siti", registered_at=utc(2026, 11, 20, 15)),  # registered that day: silent
        DeviceRegistration("siti-new", "siti", registered_at=utc(2026, 11, 20, 16)),  # registered the next day
        DeviceRegistration("siti-old", "siti", utc(2026, 1, 1), revoked_at=utc(2026, 11, 20, 9)),  # revoked that day
        DeviceRegistration("omar-phone", "omar", utc(2026, 1, 1), revoked_at=utc(2026, 11, 21)),  # revoked later
    ]
    report = build_report(window, [ActionTally("ali", "PUSH", 1)], [("ali-phone", "ali")], devices)
    assert report.devices_synced == ("ali-phone",)
    assert report.devices_silent == ("ali-tablet", "omar-phone", "siti-phone")
    reps = {rep.rep_id: rep for rep in report.reps}
    assert set(reps) == {"ali", "omar", "siti"}  # a rep with only silent devices is in the report
    assert (reps["ali"].devices_synced, reps["ali"].devices_silent) == (("ali-phone",), ("ali-tablet",))
    assert (reps["omar"].total, reps["omar"].devices_silent) == (0, ("omar-phone",))
