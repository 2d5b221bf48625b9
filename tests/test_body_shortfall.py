"""When the body Chromium hands back is not the whole body, the record must say so (and only then)."""

from __future__ import annotations

from evicap.capture.flows import HEAD_ALLOWANCE, body_shortfall


def response(**headers: str) -> dict[str, object]:
    return {"status": 200, "headers": {name.replace("_", "-"): value for name, value in headers.items()}}


def test_binary_body_shorter_than_announced_is_short() -> None:
    reason = body_shortfall(response(Content_Length="1000"), 0, 1200)
    assert reason is not None and "0 of the 1000 bytes" in reason


def test_whole_bodies_are_not_short() -> None:
    assert body_shortfall(response(Content_Length="1000"), 1000, 1200) is None
    assert body_shortfall(response(Content_Length="0"), 0, 150) is None
    assert body_shortfall(response(), 5, 200) is None  # chunked, no length announced


def test_decoded_text_may_be_shorter_than_its_wire_length() -> None:
    # A UTF-16 page: 2000 bytes on the wire, 1000 bytes once the browser decoded it and we wrote UTF-8.
    assert body_shortfall(response(Content_Length="2000"), 1000, 2200, exact=False) is None
    assert body_shortfall(response(Content_Length="2000"), 0, 2200, exact=False) is not None


def test_compressed_bodies_are_judged_by_what_arrived() -> None:
    gz = response(Content_Length="5000", Content_Encoding="gzip")
    assert body_shortfall(gz, 40000, 5200) is None
    assert body_shortfall(response(Content_Encoding="br"), 0, HEAD_ALLOWANCE + 1) is not None
    assert body_shortfall(response(Content_Encoding="br"), 0, HEAD_ALLOWANCE) is None
