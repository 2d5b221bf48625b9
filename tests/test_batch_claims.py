"""One bundle per target and attempt on a shared case directory: the claim, and which names belong to a target."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from evicap.batch.claims import claim, published_attempt, set_aside_half_made
from evicap.batch.targets import Target
from evicap.errors import CaptureError

T1 = Target(url="http://127.0.0.1:8000/a", item="T1", line=1)
LOOKALIKE = Target(url="http://127.0.0.1:8000/b", item="T1_127.0.0.1", line=2)  # its names start with T1's prefix


def test_a_second_claim_waits_for_the_first_and_gives_up_after_its_timeout(tmp_path: Path) -> None:
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with claim(tmp_path, T1, timeout=5):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    with pytest.raises(CaptureError, match="another worker still holds T1"), claim(tmp_path, T1, timeout=0.6):
        pass
    with claim(tmp_path, LOOKALIKE, timeout=0.6):  # another target's claim is independent
        pass
    started = time.monotonic()
    threading.Timer(0.3, release.set).start()
    with claim(tmp_path, T1, timeout=10):  # waits while held, gets it once released
        assert time.monotonic() - started >= 0.25
    thread.join()


def test_only_the_targets_own_staging_is_set_aside(tmp_path: Path) -> None:
    mine = tmp_path / ".staging-T1_127.0.0.1_20260101T000000Z-0123abcd"
    other = tmp_path / ".staging-T1_127.0.0.1_127.0.0.1_20260101T000000Z-89abcdef"  # LOOKALIKE's, still running
    for staging in (mine, other):
        (staging / "artifacts").mkdir(parents=True)
        (staging / "capture.warc.gz").write_bytes(b"half")
    notes = set_aside_half_made(tmp_path, T1)
    assert len(notes) == 1 and mine.name in notes[0]
    assert (tmp_path / ".unsealed" / mine.name / "capture.warc.gz").read_bytes() == b"half"  # kept, not deleted
    assert other.is_dir()


def test_no_published_attempt_without_a_bundle_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "T1_127.0.0.1_20260101T000000Z").mkdir()  # a directory with no manifest is not a bundle
    assert published_attempt(tmp_path, "C", T1, "run", 1) is None
