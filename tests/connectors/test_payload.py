"""The MQTT JSON payload decoder: every accepted form, every refusal, and random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genba.connectors._payload import PayloadError, decode

NOW = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z
T = "s/a/l/m/t"


def run(payload: bytes) -> list[tuple[str, int, float]]:
    return decode(payload, T, now_ns=NOW, max_future_ns=60 * 10**9)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"21.5", [(T, NOW, 21.5)]),
        (b"true", [(T, NOW, 1.0)]),
        (b'{"value": 3, "timestamp": 1767571100000}', [(T, NOW - 100 * 10**9, 3.0)]),
        (b'{"value": 3, "timestamp": "2026-01-04T23:59:00Z"}', [(T, NOW - 60 * 10**9, 3.0)]),
        (b'{"value": 3, "timestamp": 1767571100000.5}', [(T, NOW - 100 * 10**9 + 500_000, 3.0)]),
        (b'{"a": 1, "b": false, "timestamp": 1767571200000}', [(f"{T}/a", NOW, 1.0), (f"{T}/b", NOW, 0.0)]),
        (b'[{"value": 1, "timestamp": 1767571199000}, [1767571200000, 2]]',
         [(T, NOW - 10**9, 1.0), (T, NOW, 2.0)]),
    ],
)  # fmt: skip
def test_accepted_forms(payload: bytes, expected: list[tuple[str, int, float]]) -> None:
    assert run(payload) == expected


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{bad json", "not JSON"),
        (b"NaN", "not JSON"),
        (b'"hot"', "not a number or boolean"),
        (b"1e999", "not JSON"),  # orjson refuses infinities outright
        (b'{"value": 1, "timestamp": 253402300800000.0}', "out of range"),
        (b'{"value": 1, "timestamp": 1e300}', "out of range"),  # found by hypothesis in CI
        (b'{"value": 1, "timestamp": 1767581200000}', "in the future"),
        (b'{"value": 1, "timestamp": "yesterday"}', "Cannot read the time"),
        (b'{"value": 1, "timestamp": -5}', "not epoch milliseconds"),
        # found by bench/fuzz.py: beyond int64 ns, it crashed the connector at its next flush
        (b'{"value": 1, "timestamp": "-99999999999d"}', "out of range"),
        (b'{"value": 1, "timestamp": "1969-12-31T00:00:00Z"}', "before 1970"),
        (b'{"value": 1, "unit": "A"}', "unexpected keys ['unit']"),
        (b'{"a": {"b": 1}}', "not a number"),
        (b'{"a+b": 1}', "wildcards"),
        (b"[]", "empty array"),
        (b'[{"v": 1}]', "element 0"),
        (b"{}", "holds no values"),
        (b"null", "not a number"),
    ],
)
def test_refusals_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason.replace("[", r"\[").replace("+", r"\+")):
        run(payload)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_payload_error(data: bytes) -> None:
    try:
        samples = run(data)
    except PayloadError:
        return
    assert all(isinstance(v, float) for _, _, v in samples)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=2000, deadline=None)
@given(json_values)
def test_random_json_never_raises_anything_but_payload_error(value: object) -> None:
    import contextlib
    import json

    with contextlib.suppress(PayloadError):
        run(json.dumps(value).encode())
