"""Geo-stamp flags: a device's stamps that no journey explains, stamps at 0, 0, and copied coordinates."""

from service.domain.anomalies import AnomalyCode, Severity
from service.domain.anomalies.geo import stamp_of
from service.domain.record_types import RecordType
from service.domain.rules import distance_m
from tests.domain.flagging import Phone, at
from tests.factories import change, owned

VISIT = RecordType.VISIT
KL = (3.139, 101.6869)
KM_NORTH = 1 / 111.2  # degrees of latitude in a kilometre


def stamped(minutes: float, latitude: float, longitude: float, outlet: str = "o1", **fields: object):
    return change(
        VISIT,
        f"v-{minutes}-{outlet}",
        {"outletId": outlet, "status": "PLANNED", **fields},
        captured_at=at(minutes),
        latitude=latitude,
        longitude=longitude,
    )


def north(km: float) -> tuple[float, float]:
    return KL[0] + km * KM_NORTH, KL[1]


def test_a_drive_at_road_speed_is_plausible_and_just_over_it_is_a_jump():
    phone = Phone()  # 200 km/h by road
    assert phone.codes([stamped(0, *KL), stamped(30, *north(99))]) == []  # 198 km/h
    phone = Phone()
    flags = phone.push([stamped(0, *KL), stamped(30, *north(101))])  # 202 km/h
    assert [f.code for f in flags] == [AnomalyCode.GEO_JUMP]
    assert flags[0].severity is Severity.MEDIUM  # a plane could have made it: MEDIUM, not HIGH
    assert "101.0 km from where this device was 30 minutes before" in flags[0].reason
    assert "202 km/h, faster than 200 km/h by road" in flags[0].reason
    assert flags[0].evidence["kmh"] == 202.0


def test_a_check_in_far_from_where_the_device_was_minutes_before_is_a_high_jump():
    phone = Phone()
    far = north(80)
    check_in = change(
        VISIT,
        "v2",
        {
            "outletId": "o2",
            "status": "CHECKED_IN",
            "checkInAt": at(4).isoformat(),
            "checkInLatitude": far[0],
            "checkInLongitude": far[1],
        },
        captured_at=at(4),
    )
    flags = phone.push([stamped(0, *KL), check_in])
    assert [(f.code, f.severity) for f in flags] == [(AnomalyCode.GEO_JUMP, Severity.HIGH)]
    assert flags[0].reason.startswith(
        "The check-in of visit v2 is geo-stamped 80.0 km from where this device was 4 min"
    )
    assert "1,200 km/h" in flags[0].reason
    assert flags[0].record_id == "v2"


def test_a_rep_who_flies_between_cities_is_not_flagged():
    bangkok = (13.7563, 100.5018)
    km = distance_m(*KL, *bangkok) / 1000  # ~ 1,180 km: a day by road
    flight = (1.5 + km / 900) * 60  # airports, then the air: minutes
    assert Phone().codes([stamped(0, *KL), stamped(flight + 1, *bangkok)]) == []
    assert Phone().codes([stamped(0, *KL), stamped(flight - 1, *bangkok)]) == [AnomalyCode.GEO_JUMP]


def test_a_long_gap_between_stamps_makes_a_long_distance_plausible():
    phone = Phone()
    london = (51.5072, -0.1276)  # ~ 10,560 km away
    assert phone.codes([stamped(0, *KL), stamped(14 * 60, *london)]) == []


def test_gps_noise_under_the_minimum_distance_is_never_a_jump():
    phone = Phone()
    assert phone.codes([stamped(0, *KL), stamped(0.05, *north(2.9))]) == []  # 3 s apart, 2.9 km
    assert phone.codes([stamped(0.1, *north(6.1))]) == [AnomalyCode.GEO_JUMP]


def test_one_outlier_is_one_flag_not_two():
    phone = Phone()
    codes = phone.codes([stamped(0, *KL), stamped(5, *north(80)), stamped(10, *north(0.5))])
    assert codes == [AnomalyCode.GEO_JUMP]  # the way back to where it was is no second jump


def test_a_device_that_really_moved_is_trusted_from_its_new_place():
    phone = Phone()
    codes = phone.codes([stamped(0, *KL), stamped(5, *north(80)), stamped(7, *north(81))])
    assert codes == [AnomalyCode.GEO_JUMP]  # the first stamp there; later ones near it are fine


def test_a_stamp_at_null_island_is_flagged_and_not_used_as_a_position():
    phone = Phone()
    flags = phone.push([stamped(0, *KL), stamped(5, 0.0, 0.0), stamped(10, *north(0.5))])
    assert [f.code for f in flags] == [AnomalyCode.GEO_NULL_ISLAND]
    assert "0.000000, 0.000000" in flags[0].reason
    assert phone.codes([stamped(20, 0.0089, 0.0)]) == [AnomalyCode.GEO_NULL_ISLAND]  # within 1 km
    assert AnomalyCode.GEO_NULL_ISLAND not in phone.codes([stamped(30, 0.0092, 0.0)])  # just outside


def test_the_same_coordinates_at_two_outlets_are_flagged():
    phone = Phone()
    flags = phone.push([stamped(0, *KL, outlet="o1"), stamped(60, *KL, outlet="o2")])
    assert [(f.code, f.severity) for f in flags] == [(AnomalyCode.GEO_REPEATED, Severity.HIGH)]
    assert "same coordinates as visit v-0-o1 at outlet o1" in flags[0].reason
    # The same place at the same outlet (a second visit there) and a metre away elsewhere are not.
    assert phone.codes([stamped(120, *KL, outlet="o1"), stamped(180, KL[0] + 0.00001, KL[1], outlet="o3")]) == []


def test_a_check_in_sent_again_with_a_later_change_is_not_a_new_stamp():
    fields = {"outletId": "o1", "checkInLatitude": KL[0], "checkInLongitude": KL[1], "checkInAt": at(0).isoformat()}
    check_in = change(VISIT, "v1", {**fields, "status": "CHECKED_IN"}, captured_at=at(0))
    stamp = stamp_of(check_in, None)
    assert stamp is not None and (stamp.latitude, stamp.longitude, stamp.at) == (*KL, at(0))
    before = owned(VISIT, "v1", {**fields, "status": "CHECKED_IN"})
    done = change(VISIT, "v1", {**fields, "status": "COMPLETED"}, captured_at=at(300), base_version=1)
    assert stamp_of(done, before) is None
