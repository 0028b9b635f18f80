"""CONTENT_DUPLICATE: a new order with the same rep, outlet and lines as a recent one under another offlineId."""

from __future__ import annotations

import json
from datetime import timedelta

from service.domain.anomalies.baselines import RecentOrder, RepBaseline
from service.domain.anomalies.flags import AnomalyCode, Finding, Severity
from service.domain.anomalies.thresholds import AnomalyThresholds
from service.domain.anomalies.wording import span, subject
from service.domain.changes import Change
from service.domain.record_types import RecordType
from service.domain.records import Record

MAX_REMEMBERED = 500  # recent orders kept per rep, whatever the window


def canonical_lines(lines: list[dict[str, object]]) -> str:
    """The lines as a set of (product, quantity by value): their order and spelling do not count."""
    return json.dumps(sorted((str(line["productId"]), float(str(line["quantity"]))) for line in lines))


def check_duplicate(change: Change, before: Record | None, rep: RepBaseline, t: AnomalyThresholds) -> Finding | None:
    """Flag a new order repeating a recent one; remember it."""
    fields = change.fields or {}
    if change.record_type is not RecordType.ORDER or before is not None or not isinstance(fields.get("lines"), list):
        return None
    window = timedelta(minutes=t.duplicate_window_minutes)
    order = RecentOrder(
        change.offline_id,
        change.record_id,
        str(fields["outletId"]),
        canonical_lines(fields["lines"]),
        change.captured_at,
    )
    twin = next(
        (
            o
            for o in rep.orders
            if (o.outlet_id, o.lines) == (order.outlet_id, order.lines)
            and o.record_id != order.record_id
            and o.offline_id != order.offline_id
            and abs(o.captured_at - order.captured_at) <= window
        ),
        None,
    )
    newest = max([order.captured_at, *(o.captured_at for o in rep.orders)])
    rep.orders = [o for o in [*rep.orders, order] if newest - o.captured_at <= window][-MAX_REMEMBERED:]
    if twin is None:
        return None
    apart = abs(order.captured_at - twin.captured_at).total_seconds() / 3600
    lines = json.loads(order.lines)
    shown = ", ".join(f"{quantity:g} x {product}" for product, quantity in lines)
    return Finding(
        AnomalyCode.CONTENT_DUPLICATE,
        Severity.HIGH,
        f"{subject(change)} repeats order {twin.record_id} line for line (outlet {order.outlet_id}: {shown}) under "
        f"another offlineId, captured {span(apart)} apart (line {t.duplicate_window_minutes:g} minutes): "
        "likely one order sent twice, counted twice in sales.",
        {
            "duplicateOf": twin.record_id,
            "duplicateOfOfflineId": twin.offline_id,
            "outletId": order.outlet_id,
            "lines": lines,
            "minutesApart": round(apart * 60, 2),
            "windowMinutes": t.duplicate_window_minutes,
        },
    )
