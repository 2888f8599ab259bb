"""Signatures checked with the contract's algorithm, written out again independently here."""

from __future__ import annotations

import hashlib
import hmac

from local.coconut_emulator.webhooks import encode_body, signed_headers


def contract_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


ENVELOPE = {
    "id": "whevt_01HZX3J4K5",
    "type": "appointment.deleted",
    "created_at": "2026-11-23T15:04:05Z",
    "data": {"type": "appointments", "id": "A-1001", "attributes": {"revision": 9}},
}


def test_the_signature_verifies_with_the_contracts_algorithm() -> None:
    body = encode_body(ENVELOPE)

    headers = signed_headers("whevt_01HZX3J4K5", body, ["s3cret-ü"], 1_795_000_000)

    assert headers["Content-Type"] == "application/json"
    assert headers["X-Coconut-Delivery"] == "whevt_01HZX3J4K5"
    assert headers["X-Coconut-Timestamp"] == "1795000000"
    expected = contract_signature("s3cret-ü", "1795000000", body)
    assert headers["X-Coconut-Signature"] == f"v1={expected}"


def test_rotation_sends_one_signature_per_secret() -> None:
    body = encode_body(ENVELOPE)

    headers = signed_headers("whevt_01HZX3J4K5", body, ["new", "old"], 1_795_000_000)

    assert headers["X-Coconut-Signature"].split(",") == [
        f"v1={contract_signature('new', '1795000000', body)}",
        f"v1={contract_signature('old', '1795000000', body)}",
    ]


def test_a_different_timestamp_gives_a_different_signature() -> None:
    body = encode_body(ENVELOPE)

    first = signed_headers("d", body, ["k"], 1_795_000_000)["X-Coconut-Signature"]
    later = signed_headers("d", body, ["k"], 1_795_000_001)["X-Coconut-Signature"]

    assert first != later


def test_the_body_is_utf8_json_of_the_envelope() -> None:
    body = encode_body({**ENVELOPE, "note": "Préfère le français"})

    assert "Préfère".encode() in body
