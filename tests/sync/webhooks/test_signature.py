"""Authenticity of a Coconut delivery: the HMAC-SHA256 `v1=` signature over
`"{timestamp}.{body}"`, any of the current and previous secrets, within 300 s."""

from __future__ import annotations

import pytest

from local.coconut_emulator.webhooks.signing import signature, signature_header
from sync.webhooks.signature import TOLERANCE_SECONDS, Unauthenticated, sign, verify

SECRET = "local-webhook-secret"
PREVIOUS = "previous-webhook-secret"
BODY = b'{"id":"whevt_1"}'
AT = 1_764_600_000


def check(
    signature_header: str | None,
    timestamp_header: str | None = str(AT),
    *,
    body: bytes = BODY,
    now: float = AT,
    secrets: tuple[str, ...] = (SECRET, PREVIOUS),
) -> None:
    verify(
        secrets=secrets,
        signature_header=signature_header,
        timestamp_header=timestamp_header,
        body=body,
        now=now,
    )


def refusal(*args: str | None, **options: object) -> str:
    with pytest.raises(Unauthenticated) as refused:
        check(*args, **options)  # type: ignore[arg-type]
    return str(refused.value)


def test_the_signature_is_the_lowercase_hex_hmac_of_timestamp_dot_body() -> None:
    expected = "712eaf4bd9e053a16485e3b1c063173e9b80f3c5094888ea423f88dbd1dba51b"

    assert sign(SECRET, AT, BODY) == expected
    assert sign(SECRET, str(AT), BODY) == expected
    assert signature(SECRET, AT, BODY) == expected, "Coconut's side signs the same way"
    assert sign(PREVIOUS, AT, BODY) != expected
    assert sign(SECRET, AT + 1, BODY) != expected
    assert sign(SECRET, AT, BODY + b" ") != expected


@pytest.mark.parametrize(
    "header",
    [
        f"v1={sign(SECRET, AT, BODY)}",
        f"v1={sign(PREVIOUS, AT, BODY)}",
        f"v1={'0' * 64},v1={sign(SECRET, AT, BODY)}",
        f" v1={sign(PREVIOUS, AT, BODY)} , v0={'1' * 64}",
        signature_header([SECRET, PREVIOUS], AT, BODY),
    ],
    ids=["current", "previous", "second of two", "spaces and another scheme", "both"],
)
def test_any_v1_signature_made_with_a_known_secret_is_accepted(header: str) -> None:
    check(header)


@pytest.mark.parametrize("skew", [-TOLERANCE_SECONDS, 0, TOLERANCE_SECONDS])
def test_a_timestamp_within_300_s_either_way_is_accepted(skew: int) -> None:
    check(f"v1={sign(SECRET, AT, BODY)}", now=AT + skew)


def test_a_timestamp_with_surrounding_spaces_is_read() -> None:
    check(f"v1={sign(SECRET, AT, BODY)}", f" {AT} ")


@pytest.mark.parametrize(
    ("arguments", "options", "reason"),
    [
        ((f"v1={sign(SECRET, AT, BODY)}", None), {}, "missing X-Coconut-Timestamp header"),
        ((f"v1={sign(SECRET, AT, BODY)}", ""), {}, "missing X-Coconut-Timestamp header"),
        (
            (f"v1={sign(SECRET, AT, BODY)}", f"{AT}.5"),
            {},
            "X-Coconut-Timestamp is not whole Unix seconds",
        ),
        (
            (f"v1={sign(SECRET, AT, BODY)}", "yesterday"),
            {},
            "X-Coconut-Timestamp is not whole Unix seconds",
        ),
        (
            (f"v1={sign(SECRET, AT, BODY)}",),
            {"now": AT + TOLERANCE_SECONDS + 1},
            "X-Coconut-Timestamp is outside the 300 s tolerance",
        ),
        (
            (f"v1={sign(SECRET, AT, BODY)}",),
            {"now": AT - TOLERANCE_SECONDS - 1},
            "X-Coconut-Timestamp is outside the 300 s tolerance",
        ),
        ((None,), {}, "missing X-Coconut-Signature header"),
        (("",), {}, "missing X-Coconut-Signature header"),
        ((f"v0={sign(SECRET, AT, BODY)}",), {}, "X-Coconut-Signature has no v1= signature"),
        ((sign(SECRET, AT, BODY),), {}, "X-Coconut-Signature has no v1= signature"),
        ((f"v1={sign('another', AT, BODY)}",), {}, "X-Coconut-Signature does not match"),
        (
            (f"v1={sign(SECRET, AT, BODY)}",),
            {"body": BODY + b" "},
            "X-Coconut-Signature does not match",
        ),
        (
            (f"v1={sign(SECRET, AT - 1, BODY)}",),
            {},
            "X-Coconut-Signature does not match",
        ),
        (
            (f"v1={sign(SECRET, AT, BODY).upper()}",),
            {},
            "X-Coconut-Signature does not match",
        ),
        (
            (f"v1={sign(PREVIOUS, AT, BODY)}",),
            {"secrets": (SECRET,)},
            "X-Coconut-Signature does not match",
        ),
    ],
    ids=[
        "no timestamp",
        "empty timestamp",
        "fractional timestamp",
        "timestamp not a number",
        "301 s old",
        "301 s ahead",
        "no signature",
        "empty signature",
        "other scheme only",
        "no scheme",
        "unknown secret",
        "body changed",
        "other timestamp signed",
        "upper-case hex",
        "previous secret retired",
    ],
)
def test_a_delivery_not_provably_from_coconut_is_refused_saying_why(
    arguments: tuple[str | None, ...], options: dict[str, object], reason: str
) -> None:
    message = refusal(*arguments, **options)

    assert message == reason
    assert SECRET not in message
    assert PREVIOUS not in message
