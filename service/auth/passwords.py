"""Passwords of people who sign in to the console: Argon2id hashes (argon2-cffi), generated first passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults (RFC 9106 "low memory": 64 MiB, 3 passes, 4 lanes).
_HASHER = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 200
_WORDS = "abcdefghijkmnopqrstuvwxyz23456789"  # no 0/o, 1/l: read aloud and typed from a terminal


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def new_password() -> str:
    """A first password: 4 groups of 5 characters (about 100 bits), to be changed after signing in."""
    return "-".join("".join(secrets.choice(_WORDS) for _ in range(5)) for _ in range(4))


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a password, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password has at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    return None
