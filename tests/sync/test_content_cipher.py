"""The content cipher: AES-GCM under the current key, the previous key still opening what it
sealed, and every way a sealed value can fail to open named without content or key."""

from __future__ import annotations

import base64

import pytest

from sync.content_cipher import (
    KEY_FORMAT,
    CannotOpen,
    ContentCipher,
    DataKey,
    new_data_key,
)

OLD = DataKey.from_setting(new_data_key())
NEW = DataKey.from_setting(new_data_key())
PLAIN = b'{"notes": "Bring two pieces of ID."}'
ROW = b"items/appointment:A-1/revision/3"


def test_what_is_sealed_opens_again_and_is_not_the_plaintext() -> None:
    cipher = ContentCipher(NEW)

    key_id, sealed = cipher.seal(PLAIN, bound_to=ROW)

    assert key_id == NEW.id
    assert b"Bring" not in sealed
    assert cipher.open(key_id, sealed, bound_to=ROW) == PLAIN


def test_every_seal_draws_a_new_nonce() -> None:
    cipher = ContentCipher(NEW)

    first, second = cipher.seal(PLAIN, bound_to=ROW)[1], cipher.seal(PLAIN, bound_to=ROW)[1]

    assert first != second
    assert first[1:13] != second[1:13]


def test_during_a_rotation_the_previous_key_opens_what_it_sealed() -> None:
    key_id, sealed = ContentCipher(OLD).seal(PLAIN, bound_to=ROW)
    rotating = ContentCipher(NEW, previous=OLD)

    assert rotating.open(key_id, sealed, bound_to=ROW) == PLAIN
    assert not rotating.is_current(key_id)
    assert rotating.seal(PLAIN, bound_to=ROW)[0] == NEW.id


def test_a_key_that_is_not_configured_is_named_by_its_id() -> None:
    key_id, sealed = ContentCipher(OLD).seal(PLAIN, bound_to=ROW)

    with pytest.raises(CannotOpen, match=f"key {OLD.id}, which is not configured"):
        ContentCipher(NEW).open(key_id, sealed, bound_to=ROW)


def test_a_wrong_key_under_the_same_id_does_not_authenticate() -> None:
    key_id, sealed = ContentCipher(OLD).seal(PLAIN, bound_to=ROW)
    impostor = DataKey(id=OLD.id, secret=NEW.secret)

    with pytest.raises(CannotOpen, match="does not authenticate"):
        ContentCipher(impostor).open(key_id, sealed, bound_to=ROW)


def test_a_ciphertext_moved_to_another_row_or_revision_does_not_open() -> None:
    cipher = ContentCipher(NEW)
    key_id, sealed = cipher.seal(PLAIN, bound_to=ROW)

    for elsewhere in (b"items/appointment:A-2/revision/3", b"items/appointment:A-1/revision/2"):
        with pytest.raises(CannotOpen):
            cipher.open(key_id, sealed, bound_to=elsewhere)


def test_a_changed_byte_or_a_foreign_format_does_not_open() -> None:
    cipher = ContentCipher(NEW)
    key_id, sealed = cipher.seal(PLAIN, bound_to=ROW)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])

    with pytest.raises(CannotOpen, match="does not authenticate"):
        cipher.open(key_id, flipped, bound_to=ROW)
    with pytest.raises(CannotOpen, match="known format"):
        cipher.open(key_id, b"\x02" + sealed[1:], bound_to=ROW)
    with pytest.raises(CannotOpen, match="known format"):
        cipher.open(key_id, sealed[:20], bound_to=ROW)


def test_a_key_id_names_the_key_without_revealing_it() -> None:
    text = new_data_key()
    key = DataKey.from_setting(text)

    assert key == DataKey.from_setting(f"  {text}\n"), "the same key, the same id"
    assert len(key.id) == 16
    assert key.id not in text
    assert key.id not in key.secret.hex()
    assert key.secret.hex() not in repr(key)
    assert text not in repr(key)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 at all!",
        base64.b64encode(b"sixteen byte key").decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.b64encode(bytes(32)).decode()[:-2],
    ],
)
def test_anything_but_the_base64_of_32_bytes_is_refused_without_quoting_it(value: str) -> None:
    with pytest.raises(ValueError, match="base64 of 32 random bytes") as refused:
        DataKey.from_setting(value)

    assert str(refused.value) == KEY_FORMAT
    assert not value or value not in str(refused.value)


def test_new_keys_are_valid_and_distinct() -> None:
    keys = {new_data_key() for _ in range(20)}

    assert len(keys) == 20
    assert all(len(base64.b64decode(key)) == 32 for key in keys)
