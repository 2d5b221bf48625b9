"""The one builder of ``urn:evicap:`` URIs: the WARC-Target-URI of every record evicap itself writes."""

from __future__ import annotations

from pathlib import PurePosixPath


def evicap_uri(capture_id: str, name: str) -> str:
    """``urn:evicap:<capture id>:<name>``; ``name`` is a file name (a path keeps only its last part)."""
    return f"urn:evicap:{capture_id}:{PurePosixPath(name).name}"
