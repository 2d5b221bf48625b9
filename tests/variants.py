"""Broken variants of a JSON document, for checking that schema validators agree on every kind of mistake."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any


def places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and index path in a JSON value."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        yield (*path, key)
        yield from places(value, (*path, key))


def variants(document: dict[str, Any], wrong: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """The document with, at each place in turn, the value removed or replaced by one of ``wrong``, or a key added
    to an object."""
    for place in places(document):
        *parent_path, key = place
        for change in ("remove", "add", *range(len(wrong))):
            changed = copy.deepcopy(document)
            parent = changed
            for part in parent_path:
                parent = parent[part]
            if change == "remove":
                del parent[key]
            elif change == "add":
                if not isinstance(parent[key], dict):
                    continue
                parent[key]["unexpected_key"] = 1
            else:
                parent[key] = copy.deepcopy(wrong[int(change)])
            yield changed
