"""The database floors' token check: the one PyJWT call our app makes per request (HS256, issuer,
required claims), written once for both floors so they check exactly the same thing."""

from __future__ import annotations

import os

import jwt

SECRET = os.environ.get("STACKBENCH_JWT_SECRET", "stackbench-insecure-development-secret-change-me")


def user_id(authorization: str | None) -> int | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        claims = jwt.decode(token.strip(), SECRET, algorithms=["HS256"], issuer="stackbench",
                            options={"require": ["exp", "iat", "sub", "iss"]})
        return int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return None
