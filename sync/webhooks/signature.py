"""Authenticity of a Coconut webhook delivery: HMAC-SHA256 signatures and timestamp tolerance."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

TOLERANCE_SECONDS = 300
SCHEME = "v1="


class Unauthenticated(Exception):
    """The delivery is not provably from Coconut; the message says why (no secrets in it)."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed by the secret (UTF-8)."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    *,
    secrets: Sequence[str],
    signature_header: str | None,
    timestamp_header: str | None,
    body: bytes,
    now: float,
) -> None:
    """Raise `Unauthenticated` unless a `v1=` signature matches a secret within the tolerance."""
    if not timestamp_header:
        raise Unauthenticated("missing X-Coconut-Timestamp header")
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        raise Unauthenticated("X-Coconut-Timestamp is not whole Unix seconds") from None
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise Unauthenticated("X-Coconut-Timestamp is outside the 300 s tolerance")
    if not signature_header:
        raise Unauthenticated("missing X-Coconut-Signature header")
    offered = [
        part.strip()[len(SCHEME) :]
        for part in signature_header.split(",")
        if part.strip().startswith(SCHEME)
    ]
    if not offered:
        raise Unauthenticated("X-Coconut-Signature has no v1= signature")
    expected = [sign(secret, timestamp_header.strip(), body) for secret in secrets]
    # Every pair is compared in constant time, and all of them, so timing reveals nothing.
    matched = False
    for candidate in offered:
        for digest in expected:
            matched |= hmac.compare_digest(candidate.encode(), digest.encode())
    if not matched:
        raise Unauthenticated("X-Coconut-Signature does not match")
