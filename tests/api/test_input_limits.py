"""Operation inputs are bounded at the edge: each refusal is BAD_REQUEST naming the field and its limit."""

from __future__ import annotations

from typing import Any

from service.api.input_limits import APP_VERSION_MAX, DEVICE_NAME_MAX, PLATFORM_MAX, QUEUE_DEPTH_MAX
from tests.api.conftest import Api

REGISTER = "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){device{name platform appVersion}}}"
REPORT = "mutation($i: DeviceStatusInput!){reportDeviceStatus(input:$i){queueDepth appVersion}}"
PUSH = "mutation($i: PushInput!){pushChanges(input:$i){syncId}}"


def bad_request(body: dict[str, Any]) -> str:
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST", error
    return error["message"]


async def test_device_names_platforms_and_app_versions_are_bounded(api: Api):
    _, rep = await api.user("Ana", "REP")

    async def register(n: int, **fields: Any) -> dict[str, Any]:
        device = {"deviceId": f"d{n}", "name": "Phone", "platform": "android"} | fields
        return await api.call(REGISTER, {"i": device}, rep)

    taken = await register(1, name="n" * DEVICE_NAME_MAX, platform="p" * PLATFORM_MAX, appVersion="v" * APP_VERSION_MAX)
    assert not taken.get("errors"), taken
    assert "name must be 1 to 100 characters" in bad_request(await register(2, name="n" * (DEVICE_NAME_MAX + 1)))
    assert "platform must be 1 to 32 characters" in bad_request(await register(3, platform="p" * (PLATFORM_MAX + 1)))
    assert "appVersion must be 1 to 64 characters" in bad_request(await register(4, appVersion="v" * 2_000_000))
    assert "control characters" in bad_request(await register(5, name="Pho\x00ne"))
    assert "control characters" in bad_request(await register(6, platform="and\u202eroid"))


async def test_queue_depth_and_app_version_reports_are_bounded(api: Api):
    _, rep = await api.user("Ana", "REP")
    device = await api.device(rep, "d1")

    async def report(queue_depth: int, app_version: str = "2.1.0") -> dict[str, Any]:
        return await api.call(
            REPORT, {"i": {"deviceId": "d1", "queueDepth": queue_depth, "appVersion": app_version}}, device
        )

    assert (await report(QUEUE_DEPTH_MAX))["data"]["reportDeviceStatus"]["queueDepth"] == QUEUE_DEPTH_MAX
    assert (await report(0))["data"]["reportDeviceStatus"]["queueDepth"] == 0
    for depth in (-5, QUEUE_DEPTH_MAX + 1, 2**31 - 1):
        assert f"queueDepth must be between 0 and {QUEUE_DEPTH_MAX}" in bad_request(await report(depth))
    assert "appVersion must be 1 to 64 characters" in bad_request(await report(1, "v" * 65))

    async def push(**extra: Any) -> dict[str, Any]:
        return await api.call(PUSH, {"i": {"deviceId": "d1", "changes": [], **extra}}, device)

    assert not (await push(queueDepth=QUEUE_DEPTH_MAX, appVersion="v" * APP_VERSION_MAX)).get("errors")
    assert "queueDepth must be between 0" in bad_request(await push(queueDepth=-5))
    assert "appVersion must be 1 to 64 characters" in bad_request(await push(appVersion="v" * 65))
    devices = await api.data("{devices{id queueDepth appVersion}}")
    assert devices["devices"] == [{"id": "d1", "queueDepth": QUEUE_DEPTH_MAX, "appVersion": "v" * APP_VERSION_MAX}]
