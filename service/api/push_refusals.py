"""Recording whole pushes that were turned away, under the rep and device they came from.

A push can be turned away before any change is looked at: a bad, revoked or
wrong device token, too many changes, a body too large or not acceptable JSON,
variables that do not fit the schema. Each is answered as a request error and
also recorded as a PUSH refusal, so Sync Health shows it next to the rep. Only
requests whose token names a user or device (even a revoked or expired one)
are recorded: anonymous noise writes nothing.
"""

from __future__ import annotations

from service.auth.access import AuthError
from service.auth.roles import Principal
from service.auth.tokens import bearer
from service.services import Services

CODES = {
    "UNAUTHENTICATED": "AUTH_FAILED",
    "FORBIDDEN": "NOT_ALLOWED",
    "BAD_REQUEST": "MALFORMED_PUSH",
    "PAYLOAD_TOO_LARGE": "PAYLOAD_TOO_LARGE",
}


async def record_push_refusal(
    services: Services,
    *,
    principal: Principal | None,
    failure: AuthError | None,
    error_code: str,
    message: str,
    claimed_device_id: str | None = None,
    changes: int | None = None,
) -> None:
    device_id = (principal.device_id if principal else None) or (failure.device_id if failure else None)
    rep_id = principal.user_id if principal else failure.user_id if failure else None
    if device_id is None and rep_id is None:
        return  # no token, or one that names nobody: anonymous noise
    code = "REVOKED" if failure is not None and "revoked" in str(failure) else CODES.get(error_code, "PUSH_REFUSED")
    # Filed under the device the token belongs to, never the one the request names: a token
    # must not put refusals on another rep's device.
    claimed = (claimed_device_id or "")[:200]
    sender = f"device {device_id}" if device_id else f"a token of user {rep_id} (naming device {claimed})"
    size = f" with {changes} changes" if changes is not None else ""
    await services.sync.refuse_push(
        code=code,
        reason=f"Push from {sender}{size} was turned away: {message[:300]}.",
        device_id=device_id,
        rep_id=rep_id,
        detail={"claimedDeviceId": claimed, "changes": changes},
    )


async def record_rejected_request(
    services: Services, authorization: str | None, *, error_code: str, message: str
) -> None:
    """A request turned away before GraphQL saw it (too large, not JSON), when a device token sent it."""
    token = bearer(authorization)
    if token is None:
        return
    try:
        principal, failure = await services.access.authenticate(token), None
    except AuthError as error:
        principal, failure = None, error
    if (principal.device_id if principal else failure.device_id if failure else None) is None:
        return  # only devices push
    await record_push_refusal(services, principal=principal, failure=failure, error_code=error_code, message=message)
