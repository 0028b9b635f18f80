"""Roles and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(Enum):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    REP = "REP"
    INTEGRATOR = "INTEGRATOR"


STAFF = frozenset({Role.ADMIN, Role.MANAGER})
READERS = frozenset({Role.ADMIN, Role.MANAGER, Role.INTEGRATOR})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, and for device tokens the device it acts through."""

    user_id: str
    role: Role
    token_id: str
    device_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF

    @property
    def scope_rep(self) -> str | None:
        """The rep whose scope bounds what this caller sees; None for staff and integrators."""
        return self.user_id if self.role is Role.REP else None

    @property
    def audience(self) -> tuple[Role, str | None, str | None]:
        """What this caller is shown depends on this and nothing else (not on its token): callers with the
        same audience see the same thing, so their live feeds may share one execution."""
        return (self.role, self.scope_rep, self.device_id)

    def may_see_rep(self, rep_id: str | None) -> bool:
        """Staff and integrators see every rep; a rep sees only itself."""
        if self.role is Role.REP:
            return rep_id == self.user_id
        return True
