"""Password hashing and JWT tokens: pure functions of the settings (no I/O)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flashcards.errors import Unauthenticated
from flashcards.models import ID_MAX
from flashcards.settings import Settings


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )


def hash_password(settings: Settings, password: str) -> str:
    """Slow on purpose (argon2id); async callers run it in a thread."""
    return hasher(settings).hash(password)


def hash_password_deterministic(settings: Settings, password: str, salt_seed: str) -> str:
    """A reproducible hash for seed data: same seed, same bytes in every database."""
    from argon2.low_level import Type, hash_secret

    salt = hashlib.sha256(salt_seed.encode()).digest()[:16]
    return hash_secret(
        password.encode(),
        salt,
        time_cost=settings.password_time_cost,
        memory_cost=settings.password_memory_kib,
        parallelism=settings.password_parallelism,
        hash_len=32,
        type=Type.ID,
    ).decode()


# A valid hash of a random password: verifying against it when the user does not exist keeps
# login time the same for unknown and known usernames (no user enumeration by timing).
_DUMMY_PASSWORD = "stackbench-dummy-password"


def verify_password(settings: Settings, stored_hash: str | None, password: str) -> bool:
    target = stored_hash or _dummy_hash(settings)
    try:
        ok = hasher(settings).verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None


@lru_cache(maxsize=8)
def _dummy_hash_cached(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash(_DUMMY_PASSWORD)


def _dummy_hash(settings: Settings) -> str:
    return _dummy_hash_cached(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )


def issue_token(settings: Settings, user_id: int, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.jwt_ttl_s)).timestamp()),
        "iss": "stackbench",
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str) -> int:
    """Return the user id of a valid token; anything else is `Unauthenticated`.

    Only the configured algorithm is accepted (no `none`, no algorithm confusion), and `exp`,
    `iat`, `sub` and `iss` are required.
    """
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[settings.jwt_algorithm],
            issuer="stackbench",
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        sub = claims["sub"]
        # a user id as issue_token writes it: canonical digits in the BIGINT range (a forged
        # 2**70 must not reach the database, where it overflows into a 500)
        if not isinstance(sub, str) or not sub.isdecimal() or not sub.isascii() or sub != str(int(sub)):
            raise ValueError(sub)
        user_id = int(sub)
        if not 1 <= user_id <= ID_MAX:
            raise ValueError(sub)
        return user_id
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The token has expired.") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthenticated("The token is invalid.") from None


def expires_at(token: str) -> float:
    """The `exp` (Unix seconds) of a token `verify_token` has accepted already."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


def bearer_token(authorization: str | None) -> str:
    """Extract the token from an `Authorization: Bearer …` header value."""
    if not authorization:
        raise Unauthenticated("Missing bearer token.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Missing bearer token.")
    return token.strip()
