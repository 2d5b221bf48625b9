"""errors.first_line, the one helper that turns a foreign error (or a tool's output) into one report line."""

from __future__ import annotations

from evicap.errors import first_line


def test_first_line_of_a_message_and_the_type_when_there_is_none() -> None:
    assert first_line(ValueError("bad token\nsecond line")) == "bad token"
    assert first_line(TimeoutError()) == "TimeoutError"
    assert first_line(TimeoutError("waited 5 s"), typed=True) == "TimeoutError: waited 5 s"
    assert first_line(TimeoutError(), typed=True) == "TimeoutError: "


def test_first_line_of_a_text_is_cut_and_empty_stays_empty() -> None:
    assert first_line("  openssl: error\nmore\n") == "openssl: error"
    assert first_line("") == ""
    assert first_line("x" * 500, 200) == "x" * 200
