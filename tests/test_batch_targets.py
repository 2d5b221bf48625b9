"""Target lists: every format, bad lines reported by line number and skipped, duplicates merged once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from evicap.batch.targets import detect_format, load_targets, parse_targets
from evicap.errors import UsageError

MIXED_TXT = """# takedown list, case 42
https://example.org/a

example.org/no-scheme
https://example.org/b   # seen 2024-05-01
javascript:alert(1)
https://EXAMPLE.org:443/a
file:///etc/passwd
https://example.org/c
"""


def problems(result: object) -> dict[int, str]:
    return {p.line: p.message for p in result.problems}  # type: ignore[attr-defined]


def test_txt_keeps_good_lines_and_names_each_bad_line() -> None:
    result = parse_targets(MIXED_TXT, "txt")
    assert [t.url for t in result.targets] == [
        "https://example.org/a",
        "https://example.org/b",
        "https://example.org/c",
    ]
    assert [t.line for t in result.targets] == [2, 5, 9]
    found = problems(result)
    assert "no scheme" in found[4]
    assert "javascript" in found[6] and "refused" in found[6]
    assert "file" in found[8]
    # the duplicate (different spelling of the same URL) is reported once, on the first occurrence
    assert "duplicate" in found[2] and "7" in found[2]
    assert sum("duplicate" in m for m in found.values()) == 1


def test_generated_item_ids_follow_the_position_in_the_list() -> None:
    result = parse_targets(MIXED_TXT, "txt")
    # positions among entries: a=1, no-scheme=2, b=3, js=4, dup=5, file=6, c=7
    assert [t.item for t in result.targets] == ["T0001", "T0003", "T0007"]
    # fixing a bad line later does not renumber the others
    fixed = parse_targets(MIXED_TXT.replace("example.org/no-scheme", "https://example.org/fixed"), "txt")
    assert {t.url: t.item for t in fixed.targets}["https://example.org/c"] == "T0007"


def test_csv_columns_item_profile_note_and_extra() -> None:
    text = (
        "url,item,profile,note,source\n"
        "https://x.example/1,EX-1,generic,first post,tip line\n"
        'https://x.example/2,,,"note with, comma\nand a newline",\n'
        "not a url,EX-3,,,\n"
        "https://x.example/4,EX-1,,,\n"
        "https://x.example/5,bad id!,,,\n"
    )
    result = parse_targets(text, "csv")
    first, second = result.targets
    assert (first.item, first.profile, first.note, dict(first.extra)) == (
        "EX-1",
        "generic",
        "first post",
        {"source": "tip line"},
    )
    assert second.item == "T0002" and second.note == "note with, comma\nand a newline"
    found = problems(result)
    assert set(found) == {5, 6, 7}  # line numbers count the quoted newline
    assert "EX-1 already used on line 2" in found[6]
    assert "item id" in found[7]


def test_csv_without_url_column_is_one_problem() -> None:
    result = parse_targets("link,item\nhttps://x.example/,A\n", "csv")
    assert not result.targets
    assert "no 'url' column" in problems(result)[1]


def test_yaml_strings_and_mappings_with_line_numbers() -> None:
    text = """targets:
  - https://y.example/1
  - url: https://y.example/2
    item: Y2
    note: a mapping
  - 42
  - url: ftp://y.example/3
  - {item: no-url}
"""
    result = parse_targets(text, "yaml")
    assert [(t.url, t.item, t.line) for t in result.targets] == [
        ("https://y.example/1", "T0001", 2),
        ("https://y.example/2", "Y2", 3),
    ]
    found = problems(result)
    assert set(found) == {6, 7, 8}
    assert "neither a URL nor a mapping" in found[6]
    assert "refused" in found[7]
    assert "no URL" in found[8]


def test_yaml_syntax_error_names_the_line() -> None:
    result = parse_targets("- https://y.example/1\n- {url: oops\n", "yaml")
    assert not result.targets
    assert "YAML syntax error" in result.problems[0].message
    assert result.problems[0].line >= 2


def test_stdin_is_sniffed(tmp_path: Path) -> None:
    assert detect_format("-", "# c\nurl,item\nhttps://a.example/,A\n") == "csv"
    assert detect_format("-", "- https://a.example/\n") == "yaml"
    assert detect_format("-", "https://a.example/\n") == "txt"
    result = load_targets("-", stdin=io.StringIO("https://a.example/\nnope\n"))
    assert [t.url for t in result.targets] == ["https://a.example/"]
    assert result.problems[0].line == 2


def test_a_list_without_any_valid_target_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# nothing\nexample.org\n", encoding="utf-8")
    with pytest.raises(UsageError, match="line 2"):
        load_targets(path)
    with pytest.raises(UsageError, match="not found"):
        load_targets(tmp_path / "missing.txt")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"https://a.example/\n\xff\xfe\n")
    with pytest.raises(UsageError, match="UTF-8"):
        load_targets(binary)
