"""A device's clock read from the push itself (`PushInput.sentAt`): a slow clock is a flag, not a late sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import Api


async def test_a_phone_whose_pushes_say_they_were_sent_half_an_hour_ago_is_flagged_behind(api: Api):
    _, rep = await api.user("Clocky", "REP")
    token = await api.device(rep, "clocky-phone")
    for _ in range(3):
        sent = datetime.now(UTC) - timedelta(minutes=30)
        await api.push(token, "clocky-phone", [], sentAt=sent.isoformat())
    flags = await api.data("query{anomalies(filter:{codes:[CLOCK_SKEW]}){edges{node{deviceId reason}}}}")
    nodes = [edge["node"] for edge in flags["anomalies"]["edges"]]
    assert [node["deviceId"] for node in nodes] == ["clocky-phone"]
    assert "30 minutes behind the server's" in nodes[0]["reason"]
