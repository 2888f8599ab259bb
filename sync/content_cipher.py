"""Encryption of the customer content the service keeps at rest (docs/data-map.md).

AES-256-GCM from `cryptography`: authenticated, so a changed byte is an error rather than
different content. Choices:

- Keys are the app settings `SYNC_DATA_KEY` and, during a rotation, `SYNC_DATA_KEY_PREVIOUS`:
  the base64 of 32 random bytes each (`openssl rand -base64 32`; in Azure a Key Vault secret).
- Every seal draws a fresh random 96-bit nonce. Random nonces stay safe for about 2^32 seals
  under one key, orders of magnitude more writes than a tenant's appointments ever make.
- A key's id is the first 16 hex digits of HMAC-SHA256(key, "sync data key id"): it names the
  key (stored beside each ciphertext, so a row written under the previous key is recognised
  and opened with it) without revealing anything of it.
- The caller's associated data binds a ciphertext to where it belongs (for `items`: the item key
  and its revision), so a ciphertext copied onto another row, or left under an edited revision,
  does not open.

A sealed value is `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
FORMAT_VERSION: Final = 1
_KEY_ID_LABEL: Final = b"sync data key id"
KEY_FORMAT: Final = "must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)"


class CannotOpen(ValueError):
    """A sealed value did not open: unknown key, wrong key, altered bytes or wrong binding.
    The message says which, never anything of the content or the key."""


def new_data_key() -> str:
    """A fresh key in the settings' format (the local stack and tests make their own)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


@dataclass(frozen=True)
class DataKey:
    """One AES-256 key and its id. The key itself stays out of repr()."""

    id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_setting(cls, value: str) -> DataKey:
        """The key an app setting holds; `ValueError` (never quoting the value) when the
        setting is not the base64 of exactly 32 bytes."""
        try:
            secret = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(KEY_FORMAT) from None
        if len(secret) != KEY_BYTES:
            raise ValueError(KEY_FORMAT)
        digest = hmac.new(secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()
        return cls(id=digest[:16], secret=secret)


class ContentCipher:
    """Seals under the current key; opens what either key sealed."""

    def __init__(self, current: DataKey, previous: DataKey | None = None) -> None:
        self._current = current
        self._keys = {current.id: current}
        if previous is not None:
            self._keys.setdefault(previous.id, previous)

    @property
    def current_key_id(self) -> str:
        return self._current.id

    def is_current(self, key_id: str) -> bool:
        return key_id == self._current.id

    def seal(self, plaintext: bytes, *, bound_to: bytes) -> tuple[str, bytes]:
        """(the id of the key used, the sealed bytes)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._current.secret).encrypt(nonce, plaintext, bound_to)
        return self._current.id, bytes([FORMAT_VERSION]) + nonce + sealed

    def open(self, key_id: str, sealed: bytes, *, bound_to: bytes) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            raise CannotOpen(f"sealed under key {key_id or '(none)'}, which is not configured")
        if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES or sealed[0] != FORMAT_VERSION:
            raise CannotOpen("not a sealed value of a known format")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return AESGCM(key.secret).decrypt(nonce, body, bound_to)
        except InvalidTag:
            raise CannotOpen(f"does not authenticate under key {key_id}") from None
