"""Domain enums exposed as GraphQL enums (names are the protocol's)."""

from __future__ import annotations

import strawberry

from service.auth.roles import Role
from service.domain.changes import Operation
from service.domain.conflicts import ConflictStatus, Resolution
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.domain.refusals import RefusalAction, RefusalKind, RefusalStatus

RecordTypeEnum = strawberry.enum(RecordType, name="RecordType")
OperationEnum = strawberry.enum(Operation, name="Operation")
ChangeStatusEnum = strawberry.enum(ChangeStatus, name="ChangeStatus")
ConflictStatusEnum = strawberry.enum(ConflictStatus, name="ConflictStatus")
ResolutionEnum = strawberry.enum(Resolution, name="Resolution")
RefusalKindEnum = strawberry.enum(RefusalKind, name="RefusalKind")
RefusalStatusEnum = strawberry.enum(RefusalStatus, name="RefusalStatus")
RefusalActionEnum = strawberry.enum(RefusalAction, name="RefusalAction")
RoleEnum = strawberry.enum(Role, name="Role")
