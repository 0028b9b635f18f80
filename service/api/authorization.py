"""Who may call what: every Query, Mutation and Subscription field, per kind of caller, as data.

Read off the resolvers (each starts with ``Context.require``/``require_device`` and then
narrows what it returns). This table is documentation that is checked:
``tests/api/test_authorization_matrix.py`` fails when a schema operation has no entry,
calls every denied (operation, caller) pair and expects FORBIDDEN, calls every allowed
pair and expects no FORBIDDEN, and calls every operation without a valid token and
expects UNAUTHENTICATED. ``docs/security.md`` carries ``markdown()`` of it.

A REP acts either through its user token (``REP``: the web or a fresh phone before
``registerDevice``) or through a device token (``DEVICE``: bound to one rep and one
device); the two differ for sync operations, so they are separate columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Caller(Enum):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    REP = "REP"  # a rep's user token
    DEVICE = "DEVICE"  # a rep's device token (REP role, bound to one device)
    INTEGRATOR = "INTEGRATOR"


@dataclass(frozen=True)
class Access:
    allowed: bool
    scope: str  # what the caller may do or see; for a denial, why


def allow(scope: str) -> Access:
    return Access(True, scope)


DENY = Access(False, "FORBIDDEN")
NEEDS_DEVICE = Access(False, "FORBIDDEN: needs a device token")

ADMIN, MANAGER, REP, DEVICE, INTEGRATOR = Caller.ADMIN, Caller.MANAGER, Caller.REP, Caller.DEVICE, Caller.INTEGRATOR
OWN_REP_ONLY = "its own rep only; another repId is FORBIDDEN"


def _staff(scope: str, rep: Access, device: Access | None = None, integrator: Access = DENY) -> dict[Caller, Access]:
    return {ADMIN: allow(scope), MANAGER: allow(scope), REP: rep, DEVICE: device or rep, INTEGRATOR: integrator}


AUTHORIZATION: dict[str, dict[Caller, Access]] = {
    # -- queries --------------------------------------------------------------
    "me": {caller: allow("its own user") for caller in Caller},
    "users": _staff("every user (filter by role)", DENY),
    "devices": _staff("every device (filter by repId)", allow("its own rep's devices; repId is ignored")),
    "pull": {
        ADMIN: DENY,
        MANAGER: DENY,
        REP: NEEDS_DEVICE,
        INTEGRATOR: DENY,
        DEVICE: allow("its own device only: its rep's records, the outlets of its outlet scope, active products"),
    },
    "record": {
        ADMIN: allow("any record"),
        MANAGER: allow("any record"),
        INTEGRATOR: allow("any record"),
        REP: allow("its own owned records, products, and the outlets of its outlet scope; anything else is null"),
        DEVICE: allow("as REP: its own owned records, products, the outlets of its outlet scope"),
    },
    "conflicts": _staff(
        "every rep's conflicts (filter by repId, status)",
        allow("its own rep's conflicts; repId is ignored"),
        integrator=allow("every rep's conflicts, read only"),
    ),
    "syncHealth": _staff("every rep", allow(OWN_REP_ONLY)),
    "refusals": _staff("every refusal (filter)", allow(OWN_REP_ONLY), integrator=allow("every refusal, read only")),
    "syncHistory": _staff("every event (filter)", allow(OWN_REP_ONLY), integrator=allow("every event, read only")),
    "syncReport": _staff(
        "every rep's counts for the day", allow("its own counts only"), integrator=allow("every rep's counts")
    ),
    "anomalies": _staff("every flag (filter)", allow(OWN_REP_ONLY), integrator=allow("every flag, read only")),
    # -- mutations ------------------------------------------------------------
    "createUser": {
        ADMIN: allow("any user of any role; returns its first token"),
        MANAGER: DENY,
        REP: DENY,
        DEVICE: DENY,
        INTEGRATOR: DENY,
    },
    "changePassword": {
        ADMIN: allow("its own console password; the current one is checked, its other sessions end"),
        MANAGER: allow("its own console password; the current one is checked, its other sessions end"),
        REP: DENY,
        DEVICE: DENY,
        INTEGRATOR: DENY,
    },
    "registerDevice": {
        ADMIN: DENY,
        MANAGER: DENY,
        INTEGRATOR: DENY,
        REP: allow("a device for itself; another rep's device id is BAD_REQUEST, a revoked one FORBIDDEN"),
        DEVICE: allow("its own device id only (a fresh token for it)"),
    },
    "issueToken": {
        ADMIN: allow("a token for any user"),
        MANAGER: allow("a token for a REP only; other roles FORBIDDEN"),
        REP: DENY,
        DEVICE: DENY,
        INTEGRATOR: DENY,
    },
    "revokeToken": {
        ADMIN: allow("any token"),
        MANAGER: allow("its own tokens and reps' tokens; others read as NOT_FOUND"),
        REP: allow("its own user's tokens (device tokens included); others NOT_FOUND"),
        DEVICE: allow("its own user's tokens (device tokens included); others NOT_FOUND"),
        INTEGRATOR: allow("its own tokens; others NOT_FOUND"),
    },
    "revokeDevice": _staff("any device", allow("its own rep's devices; others NOT_FOUND")),
    "pushChanges": {
        ADMIN: DENY,
        MANAGER: DENY,
        REP: NEEDS_DEVICE,
        INTEGRATOR: DENY,
        DEVICE: allow(
            "its own device only; records outside its rep are refused per change (NOT_OWNER, READ_ONLY, "
            "OUT_OF_SCOPE, OUTLET_NOT_ASSIGNED, READ_ONLY_FIELD for repIds)"
        ),
    },
    "resolveConflict": _staff(
        "any conflict",
        allow("its own rep's conflicts; others NOT_FOUND"),
        allow("conflicts raised by its own device; others NOT_FOUND"),
    ),
    "writeRecord": _staff("any record, as a server edit", DENY),
    "acknowledgeRefusal": {
        ADMIN: DENY,
        MANAGER: DENY,
        INTEGRATOR: DENY,
        REP: allow("its own rep's refusals; others NOT_FOUND"),
        DEVICE: allow("refusals of its own device; others NOT_FOUND"),
    },
    "dismissRefusal": _staff("any refusal", DENY),
    "reportDeviceStatus": {
        ADMIN: DENY,
        MANAGER: DENY,
        REP: NEEDS_DEVICE,
        INTEGRATOR: DENY,
        DEVICE: allow("its own device only"),
    },
    "reviewAnomaly": _staff("any flag: CONFIRMED or DISMISSED, with a note", DENY),
    # -- subscriptions ----------------------------------------------------------
    "refusalEvents": _staff("every rep's refusal events (filter by repId)", allow(OWN_REP_ONLY)),
    "anomalyEvents": _staff("every rep's flags as raised and reviewed (filter by repId)", allow(OWN_REP_ONLY)),
    "syncStatus": _staff("every device's status events (filter by repId, deviceId)", allow(OWN_REP_ONLY)),
}


def denied(operation: str) -> list[Caller]:
    return [caller for caller, access in AUTHORIZATION[operation].items() if not access.allowed]


def markdown() -> str:
    """The matrix as a Markdown table (docs/security.md carries it verbatim)."""
    head = "| operation | " + " | ".join(caller.value for caller in Caller) + " |"
    rows = [head, "|" + "---|" * (len(Caller) + 1)]
    for operation, access in AUTHORIZATION.items():
        cells = [(a.scope if a.allowed else f"**no** ({a.scope})") for a in (access[c] for c in Caller)]
        rows.append(f"| `{operation}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
