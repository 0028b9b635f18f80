"""When the store cannot serve a request now: one exception, and the driver errors that mean it.

Code that detects a store fault of its own (a restart under way, a full disk found by a
probe) raises ``StoreUnavailable``; everything else arrives as a PyMongo error, and
``as_unavailable`` says which of those mean "the same request may succeed later". The API
turns either into the error code ``UNAVAILABLE`` (HTTP 503 with ``Retry-After``); every
other failure is ``INTERNAL``. The driver's own text (addresses, topology, SQLite messages)
stays in the server's log: a ``StoreUnavailable`` carries only one of ``REASONS``.
"""

from __future__ import annotations

from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

UNREACHABLE = "unreachable"
TIMED_OUT = "timed out"
DISK_FULL = "disk full"
BUSY = "busy"
NOT_WRITABLE = "not writable"
REASONS = (UNREACHABLE, TIMED_OUT, DISK_FULL, BUSY, NOT_WRITABLE)

DEFAULT_RETRY_AFTER = 5.0  # seconds a client is told to wait before trying again

# MongoDB server error codes that mean "not now" (see mongo/base/error_codes.yml).
_CODES = {
    14031: DISK_FULL,  # OutOfDiskSpace
    24: BUSY,  # LockTimeout
    112: BUSY,  # WriteConflict, still losing after the unit of work's retries
    50: TIMED_OUT,  # MaxTimeMSExpired
    262: TIMED_OUT,  # ExceededTimeLimit
    91: NOT_WRITABLE,  # ShutdownInProgress
    189: NOT_WRITABLE,  # PrimarySteppedDown
    10107: NOT_WRITABLE,  # NotWritablePrimary
    13435: NOT_WRITABLE,  # NotPrimaryNoSecondaryOk
    11600: NOT_WRITABLE,  # InterruptedAtShutdown
    11602: NOT_WRITABLE,  # InterruptedDueToReplStateChange
}
# The embedded store (mongoeco over SQLite) reports these in its message text only.
_TEXTS = {
    "database or disk is full": DISK_FULL,
    "no space left on device": DISK_FULL,
    "disk i/o error": DISK_FULL,
    "file too large": DISK_FULL,
    "database is locked": BUSY,
    "already has an active transaction": BUSY,
    "active transaction bound to another session": BUSY,
    "write conflict during transaction commit": BUSY,
}


class StoreUnavailable(Exception):
    """The store cannot serve this request now; the same request may succeed later."""

    def __init__(self, reason: str, retry_after: float = DEFAULT_RETRY_AFTER) -> None:
        assert reason in REASONS, reason
        super().__init__(f"store {reason}")
        self.reason = reason
        self.retry_after = retry_after


def as_unavailable(error: BaseException) -> StoreUnavailable | None:
    """``error`` (or what caused it) as a ``StoreUnavailable``; None when it is some other failure."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreUnavailable):
            return current
        if isinstance(current, PyMongoError) and (reason := _reason(current)) is not None:
            found = StoreUnavailable(reason)
            found.__cause__ = current
            return found
        current = current.__cause__ or current.__context__
    return None


def _reason(error: PyMongoError) -> str | None:
    if isinstance(error, ServerSelectionTimeoutError):  # no server answered at all
        return UNREACHABLE
    if error.timeout or isinstance(error, ExecutionTimeout | WTimeoutError | WaitQueueTimeoutError):
        return TIMED_OUT
    if isinstance(error, ConnectionFailure):  # network errors, server selection, NetworkTimeout
        return UNREACHABLE
    if isinstance(error, OperationFailure | WriteConcernError):
        if error.code in _CODES:
            return _CODES[error.code]
        text = _text(error)
        for words, reason in _TEXTS.items():
            if words in text:
                return reason
    return None


def _text(error: OperationFailure | WriteConcernError) -> str:
    """The message, and those of a bulk write's individual errors."""
    details = error.details if isinstance(error.details, dict) else {}
    entries = [*details.get("writeErrors", []), details.get("writeConcernError") or {}]
    return " ".join([str(error), *(str(e.get("errmsg", "")) for e in entries if isinstance(e, dict))]).lower()
