"""What the watch reports between two captures, on snapshots built by hand (the end-to-end runs are in
tests/integration/test_watch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evicap.errors import UsageError
from evicap.watch.compare import compare, first_capture
from evicap.watch.snapshot import Snapshot, page_text
from evicap.watch.state import WatchState, parse_duration


def snap(name: str | None, items: dict | None = None, *, status: str = "complete", http: int | None = 200,
         wall: dict | None = None, media: dict | None = None, text: tuple = ()) -> Snapshot:  # fmt: skip
    return Snapshot(name, status, http, None if name else "connection refused", wall, items, media or {}, text)


POSTS = {"1": {"text": "one"}, "2": {"text": "two"}}
LOGIN = {"kind": "login", "reason": "a login wall hides the content", "evidence": "selector form#login"}


def kinds(changes: list[dict]) -> set[tuple[str, str | None]]:
    return {(c["change"], c.get("post_id")) for c in changes}


def test_a_wall_makes_missing_posts_unavailable_not_deleted() -> None:
    changes = compare(snap("a", POSTS), snap("b", None, status="partial", wall=LOGIN))
    assert kinds(changes) == {("wall", None), ("unavailable", "1"), ("unavailable", "2")}
    assert all(c["previous_bundle"] == "a" and c["bundle"] == "b" for c in changes)
    assert kinds(compare(snap("b", None, wall=LOGIN), snap("c", POSTS))) == {("wall-gone", None), ("new", "1"),
                                                                            ("new", "2")}  # fmt: skip


def test_account_gone_and_back() -> None:
    gone = snap("b", None, http=404, status="partial",
                wall={"kind": "unavailable", "reason": "the server answered HTTP 404", "evidence": "HTTP status 404"})
    assert ("account-unavailable", None) in kinds(compare(snap("a", POSTS), gone))
    assert ("deleted", "1") not in kinds(compare(snap("a", POSTS), gone))
    assert ("account-available", None) in kinds(compare(gone, snap("c", POSTS)))


def test_failed_capture_is_reported_and_compares_nothing_else() -> None:
    assert kinds(compare(snap("a", POSTS), snap(None))) == {("capture-failed", None)}


def test_media_and_page_text_changes_without_items() -> None:
    before = snap("a", media={"aa" * 32: "http://x/1.png"}, text=("Title", "old line"))
    after = snap("b", media={"bb" * 32: "http://x/2.png"}, text=("Title", "new line"))
    changes = compare(before, after)
    assert kinds(changes) == {("page-text-changed", None), ("media-new", None), ("media-gone", None)}
    text = next(c for c in changes if c["change"] == "page-text-changed")
    assert text["added"] == ["new line"] and text["removed"] == ["old line"]
    assert compare(before, before) == []


def test_a_new_hash_list_match_is_a_change_once() -> None:
    match = {"list": "gifct", "label": "entity-X logo", "signal_type": "pdq", "distance": 12, "value": "ab" * 32,
             "target_uri": "http://x/new.jpg", "warc_record_id": "<urn:uuid:2>"}  # fmt: skip
    before = snap("a", POSTS)
    after = Snapshot("b", "complete", 200, None, None, POSTS, {}, (), None, (match,))
    (change,) = compare(before, after)
    assert change["change"] == "hash-match" and change["label"] == "entity-X logo"
    assert change["warc_record_id"] == "<urn:uuid:2>" and change["bundle"] == "b"
    assert compare(after, Snapshot("c", "complete", 200, None, None, POSTS, {}, (), None, (match,))) == []
    (first,) = first_capture(after)  # the very first capture of a target reports its matches too
    assert first["change"] == "hash-match" and first["previous_bundle"] is None and first["bundle"] == "b"


def test_page_text_skips_scripts_and_styles(tmp_path: Path) -> None:
    dom = tmp_path / "dom.html"
    dom.write_text("<html><head><title>t</title><style>p{}</style></head><body><h1>Hi</h1>"
                   "<script>var secret = 1</script><p>Para  one</p></body></html>")  # fmt: skip
    assert page_text(dom) == ("Hi", "Para one")


def test_durations_and_state_round_trip(tmp_path: Path) -> None:
    assert parse_duration("90") == 90 and parse_duration("15m") == 900 and parse_duration("1d") == 86400
    for bad in ("soon", "0s", "-5m"):
        with pytest.raises(UsageError):
            parse_duration(bad)
    state = WatchState.load(tmp_path)
    entry = state.target("item-1", "http://x/")
    entry.rounds = 2
    state.save()
    again = WatchState.load(tmp_path).target("item-1", "http://x/")
    assert again.rounds == 2
    (tmp_path / "watch-state.json").write_text("{not json")
    with pytest.raises(Exception, match="unreadable watch state"):
        WatchState.load(tmp_path)
