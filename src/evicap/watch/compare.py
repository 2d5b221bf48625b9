"""Two captures of one target -> the changes an investigator is told about.

Kinds:
  new, edited, deleted        an item (post, by id) appeared, changed its text, or is gone from a capture that saw
                              the account normally;
  unavailable                 items not seen because this capture met a wall or an error (not called deleted);
  account-unavailable         the target answered 404/410, or the page says the content was removed;
  account-available           it is back;
  wall                        a login wall, bot challenge or rate limit appeared (``wall-gone`` when it went);
  capture-failed              no usable capture this round (the previous one stays the reference);
  media-new, media-gone       an image or video (by SHA-256) the page loads appeared or is no longer loaded;
  page-text-changed           for pages without items: the visible text changed (lines added / removed);
  hash-match                  with --match-list: media matching a hash list that the previous capture did not show.
"""

from __future__ import annotations

from typing import Any

from evicap.watch.snapshot import Snapshot

SNIPPET = 200
GONE_STATUSES = (404, 410)


def _snip(text: Any) -> str | None:
    if text is None:
        return None
    flat = " ".join(str(text).split())
    return flat if len(flat) <= SNIPPET else flat[: SNIPPET - 1] + "…"


def _unavailable(snapshot: Snapshot) -> bool:
    wall = snapshot.wall or {}
    return snapshot.http_status in GONE_STATUSES or wall.get("kind") == "unavailable"


def _usable(snapshot: Snapshot) -> bool:
    """A capture that saw the account as a visitor would: published, no wall, not gone."""
    return snapshot.bundle is not None and snapshot.status != "failed" and not snapshot.wall


def compare(before: Snapshot, after: Snapshot) -> list[dict[str, Any]]:
    """Changes from ``before`` to ``after``; each names both bundles (``previous_bundle`` and ``bundle``)."""
    changes: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        changes.append({"change": kind, **{k: v for k, v in fields.items() if v is not None}})

    if after.bundle is None:
        add("capture-failed", detail=after.error or "no bundle was published")
        return _linked(changes, before, after)
    if _unavailable(after) and not _unavailable(before):
        add("account-unavailable", detail=(after.wall or {}).get("reason") or f"HTTP {after.http_status}")
    elif _unavailable(before) and not _unavailable(after):
        add("account-available", detail=f"HTTP {after.http_status}")
    if after.wall and not _unavailable(after) and (before.wall or {}).get("kind") != after.wall.get("kind"):
        add("wall", detail=f"{after.wall.get('kind')} wall: {after.wall.get('reason')}")
    elif before.wall and not after.wall:
        add("wall-gone", detail=f"{before.wall.get('kind')} wall no longer met")
    if before.items is not None or after.items is not None:
        old, new = before.items or {}, after.items or {}
        for key, item in new.items():
            if key not in old:
                add("new", post_id=key, text=_snip(item.get("text")), url=item.get("url"))
            elif (old[key].get("text") or "") != (item.get("text") or ""):
                add("edited", post_id=key, before=_snip(old[key].get("text")), after=_snip(item.get("text")),
                    url=item.get("url"))  # fmt: skip
        missing = [key for key in old if key not in new]
        for key in missing:
            kind = "deleted" if _usable(after) else "unavailable"
            detail = None if kind == "deleted" else (after.error or "the capture met a wall")
            add(kind, post_id=key, text=_snip(old[key].get("text")), url=old[key].get("url"), detail=detail)
    elif before.text != after.text and _usable(after) and _usable(before):
        old_lines, new_lines = set(before.text), set(after.text)
        added = [line for line in after.text if line not in old_lines]
        removed = [line for line in before.text if line not in new_lines]
        add("page-text-changed", detail=f"{len(added)} line(s) added, {len(removed)} removed",
            added=[_snip(x) for x in added[:5]], removed=[_snip(x) for x in removed[:5]])  # fmt: skip
    changes.extend(_new_matches(before.matches, after.matches))
    if _usable(after) and _usable(before):
        for digest, uri in after.media.items():
            if digest not in before.media:
                add("media-new", sha256=digest, url=uri)
        for digest, uri in before.media.items():
            if digest not in after.media:
                add("media-gone", sha256=digest, url=uri)
    return _linked(changes, before, after)


def first_capture(after: Snapshot) -> list[dict[str, Any]]:
    """What the first capture of a target reports on its own: its hash-list matches (nothing to compare yet)."""
    return _linked(_new_matches((), after.matches), Snapshot(None, "failed", None, None, None, None), after)


def _new_matches(before: tuple[dict[str, Any], ...], after: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    seen = {_match_key(m) for m in before}
    found = []
    for match in after:
        if _match_key(match) in seen:
            continue
        seen.add(_match_key(match))
        kind, distance = match.get("signal_type"), match.get("distance")
        fields = {
            "change": "hash-match",
            "detail": f"{match.get('list')}: {match.get('label')} ({kind}, distance {distance})",
            "url": match.get("target_uri") or match.get("artifact"),
            "warc_record_id": match.get("warc_record_id"),
            "list": match.get("list"),
            "label": match.get("label"),
        }
        found.append({k: v for k, v in fields.items() if v is not None})
    return found


def _match_key(match: dict[str, Any]) -> tuple[Any, ...]:
    """The same listed entry met in the same medium (by its hash), whatever record it came in."""
    return (match.get("list"), match.get("label"), match.get("signal_type"), match.get("value"))


def _linked(changes: list[dict[str, Any]], before: Snapshot, after: Snapshot) -> list[dict[str, Any]]:
    for change in changes:
        change["previous_bundle"] = before.bundle
        change["bundle"] = after.bundle
    return changes
