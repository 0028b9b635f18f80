"""The ``anomaly_baselines`` collection: what flagging learned of each rep and device (``_id`` rep:<id> / device:<id>).

One read (both documents by ``_id``) and one write per push chunk; a restart keeps them.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.anomalies import Baselines, DeviceBaseline, RepBaseline
from service.domain.anomalies.baselines import GeoStamp, RecentOrder
from service.domain.composite_ids import composite_id
from service.store import held_connection
from service.store.database import Store
from service.store.documents import replace_all

COLLECTION = "anomaly_baselines"


def _rep_key(rep_id: str) -> str:
    return composite_id("rep", rep_id)


def _device_key(device_id: str) -> str:
    return composite_id("device", device_id)


def _stamp(stamp: GeoStamp | None) -> dict[str, Any] | None:
    if stamp is None:
        return None
    return {
        "lat": stamp.latitude,
        "lon": stamp.longitude,
        "at": stamp.at,
        "outletId": stamp.outlet_id,
        "label": stamp.label,
    }


def _stamp_of(document: dict[str, Any] | None) -> GeoStamp | None:
    if document is None:
        return None
    return GeoStamp(document["lat"], document["lon"], document["at"], document.get("outletId"), document["label"])


def _rep_document(rep: RepBaseline) -> dict[str, Any]:
    return {
        "_id": _rep_key(rep.rep_id),
        "delays": rep.delays,
        "delaySync": rep.delay_sync,
        "orders": [
            {
                "offlineId": o.offline_id,
                "recordId": o.record_id,
                "outletId": o.outlet_id,
                "lines": o.lines,
                "at": o.captured_at,
            }
            for o in rep.orders
        ],
    }


def _rep(rep_id: str, document: dict[str, Any] | None) -> RepBaseline:
    if document is None:
        return RepBaseline(rep_id)
    return RepBaseline(
        rep_id,
        delays=list(document.get("delays", [])),
        delay_sync=document.get("delaySync"),
        orders=[
            RecentOrder(o["offlineId"], o["recordId"], o["outletId"], o["lines"], o["at"])
            for o in document.get("orders", [])
        ],
    )


def _device_document(device: DeviceBaseline) -> dict[str, Any]:
    return {
        "_id": _device_key(device.device_id),
        "trusted": _stamp(device.trusted),
        "suspect": _stamp(device.suspect),
        "stamps": [_stamp(s) for s in device.stamps],
        "skews": device.skews,
        "skewFlagged": device.skew_flagged,
        "queueDepth": device.queue_depth,
        "queueSince": device.queue_since,
        "queueSinceDepth": device.queue_since_depth,
        "queueFlagged": device.queue_flagged,
    }


def _device(device_id: str, document: dict[str, Any] | None) -> DeviceBaseline:
    if document is None:
        return DeviceBaseline(device_id)
    return DeviceBaseline(
        device_id,
        trusted=_stamp_of(document.get("trusted")),
        suspect=_stamp_of(document.get("suspect")),
        stamps=[s for s in map(_stamp_of, document.get("stamps", [])) if s is not None],
        skews=list(document.get("skews", [])),
        skew_flagged=bool(document.get("skewFlagged")),
        queue_depth=document.get("queueDepth"),
        queue_since=document.get("queueSince"),
        queue_since_depth=document.get("queueSinceDepth"),
        queue_flagged=bool(document.get("queueFlagged")),
    )


async def load(store: Store, rep_id: str, device_id: str, session: AsyncClientSession | None) -> Baselines:
    """The rep's and the device's baselines (empty ones for a first push), in one query."""
    keys = [_rep_key(rep_id), _device_key(device_id)]
    found = {
        document["_id"]: document
        for document in await held_connection.find(store.db[COLLECTION], {"_id": {"$in": keys}}, session)
    }
    return Baselines(_rep(rep_id, found.get(keys[0])), _device(device_id, found.get(keys[1])))


async def save(store: Store, baselines: Baselines, session: AsyncClientSession | None) -> None:
    documents = [_rep_document(baselines.rep), _device_document(baselines.device)]
    await replace_all(store.db[COLLECTION], documents, session)
