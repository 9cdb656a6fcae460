"""Passwords (argon2id, memory-hard) and the secrets given to accounts (invitation and reset links, API tokens):
random, shown once, kept only as their SHA-256 (they are long random strings, so a fast hash is enough)."""
from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import InvalidParameter

HASHER = PasswordHasher()  # argon2id with the library's current recommended cost
MIN_PASSWORD_LENGTH = 12
# Verified against when an account has no password yet, so that an unknown e-mail takes as long as a known one.
_DUMMY_HASH = HASHER.hash("not a password of anyone")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidParameter(f"Le mot de passe doit compter au moins {MIN_PASSWORD_LENGTH} caractères.",
                               parameter="password")
    if len(password) > 1000:
        raise InvalidParameter("Le mot de passe est trop long (1 000 caractères au plus).", parameter="password")
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


def new_secret() -> tuple[str, str]:
    """(the secret to hand over once, the hash to keep)."""
    secret = secrets.token_urlsafe(32)
    return secret, secret_hash(secret)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
