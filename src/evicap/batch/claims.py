"""Exactly one bundle per target and attempt when a broker delivers a task more than once (shared case directory).

A broker with late acknowledgement delivers a task again when the worker that had it dies; it may also deliver it
twice while the first worker still runs (a visibility timeout shorter than the capture, a network partition). So
a worker, before capturing:

1. takes the target's claim: an exclusive ``flock`` on ``.claims/<item>.lock`` in the case directory, waiting
   while another worker holds it (the kernel drops a dead process's lock; NFSv4 carries flock as a POSIX lock
   across machines and drops it when the dead client's lease ends);
2. looks for a published bundle of this case, item, run and attempt (its manifest records them): if there is
   one, the task's work is done, and that bundle is the answer: no second capture;
3. sets aside, into ``.unsealed/``, this target's half-made staging directories (a killed worker's): never
   deleted, never sealed, never mistaken for a bundle.

Nothing here imports Celery.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evicap.batch.case import UNSEALED_DIR
from evicap.batch.job import staging_prefix
from evicap.batch.resume import read_bundle_facts
from evicap.batch.targets import Target
from evicap.bundle import layout
from evicap.bundle.model import CaptureResult, Status
from evicap.bundle.staging import safe_component
from evicap.errors import CaptureError, EnvironmentProblem

CLAIMS_DIR = ".claims"
# What follows a target's prefix (item_host_) in its names: the UTC stamp, publish's -N, staging's random tail.
_BUNDLE_TAIL = re.compile(r"\d{8}T\d{6}Z(-\d+)?")
_STAGING_TAIL = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
ATTEMPT_KEYS = ("batch_run", "batch_attempt")  # in the capture options' extra, so in manifest.environment


@contextmanager
def claim(directory: Path, target: Target, timeout: float) -> Iterator[None]:
    """Hold the target's claim; raises CaptureError when another worker keeps it past ``timeout`` seconds."""
    claims = directory / CLAIMS_DIR
    try:
        claims.mkdir(exist_ok=True)
        digest = hashlib.sha256(target.item.encode("utf-8")).hexdigest()[:12]
        fd = os.open(claims / f"{safe_component(target.item, fallback='item', limit=60)}-{digest}.lock",
                     os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot claim {target.item} in {directory}: {exc.strerror or exc}") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CaptureError(
                        f"another worker still holds {target.item} after {timeout:g} s", url=target.url
                    ) from None
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


def _named_for(directory: Path, target: Target, staging: bool) -> Iterator[Path]:
    prefix = (layout.STAGING_PREFIX if staging else "") + staging_prefix(target)
    tail = _STAGING_TAIL if staging else _BUNDLE_TAIL
    for child in sorted(directory.iterdir()):
        name = child.name
        if name.startswith(prefix) and tail.fullmatch(name[len(prefix):]) and child.is_dir() \
                and not child.is_symlink():
            yield child


def published_attempt(directory: Path, case: str | None, target: Target, run: str, attempt: int
                      ) -> CaptureResult | None:
    """The bundle this case, run, target and attempt already published, as a result; None when there is none."""
    for bundle in _named_for(directory, target, staging=False):
        try:
            manifest = json.loads((bundle / layout.MANIFEST).read_bytes())
            extra = manifest["environment"]["options"]["extra"]
            mine = (manifest["case"]["case_id"] == case and manifest["case"]["item_id"] == target.item
                    and extra.get("batch_run") == run and extra.get("batch_attempt") == attempt)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        facts = read_bundle_facts(directory, bundle) if mine else None
        if facts is None:
            continue
        sealed = (bundle / layout.SIGNATURE).is_file()
        status: Status = facts.status if sealed else "failed"  # type: ignore[assignment]
        reason = facts.reason if sealed else "not sealed (the bundle has no signature)"
        return CaptureResult(url=facts.url or target.url, status=status, bundle=str(bundle), error=reason,
                             manifest_sha256=facts.manifest_sha256, item=target.item)
    return None


def set_aside_half_made(directory: Path, target: Target) -> list[str]:
    """Move this target's staging directories (a dead worker's) into ``.unsealed/``; notes naming each one."""
    notes = []
    for staging in list(_named_for(directory, target, staging=True)):
        aside = directory / UNSEALED_DIR
        aside.mkdir(exist_ok=True)
        shutil.move(str(staging), str(aside / staging.name))
        notes.append(f"set aside half-written {staging.name} in {UNSEALED_DIR}/ (never sealed, kept)")
    return notes
